//! The status bar's state: each stage's health and its own last error (kept, with when
//! it happened, until the stage is ok again, and logged once), where the series come
//! from, the token, the consumer, and what the load is doing (reloading, merging,
//! done, partitions blocked).

use std::collections::BTreeMap;
use std::time::Instant;

use wmtop_core::load::events::Stuck;
use wmtop_core::runtime::monitor::{Stage, StageState};

/// A stage's last error and when it was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageError {
    pub text: String,
    pub at: jiff::Timestamp,
}

/// One stage as the status bar shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageView {
    pub state: StageState,
    pub error: Option<StageError>,
}

/// The status bar.
pub struct StatusState {
    pub stages: BTreeMap<Stage, StageView>,
    pub token_expiry: Option<Instant>,
    pub consumer_running: bool,
    pub paused: bool,
    pub reloading: bool,
    /// The load is merging copies away (of this many transactions), or None.
    pub merging: Option<usize>,
    /// When the last load was settled (every partition read, copies merged).
    pub settled_at: Option<jiff::Timestamp>,
    /// The simulator's URL when the series come from it.
    pub simulator: Option<String>,
    /// The window of the last fetch.
    pub window: Option<wmtop_core::config::Window>,
    /// Messages the broker does not serve, per partition.
    pub stuck: BTreeMap<i32, Stuck>,
    /// TLS verification is off (`--insecure`): shown at all times.
    pub insecure: bool,
    /// The config file's profile in force: shown at all times.
    pub profile: Option<String>,
    /// When the next scheduled reload starts (`reload_every`), or None.
    pub next_reload: Option<Instant>,
}

impl Default for StatusState {
    fn default() -> Self {
        StatusState {
            stages: Stage::ALL
                .iter()
                .map(|s| {
                    (
                        *s,
                        StageView {
                            state: StageState::Unknown,
                            error: None,
                        },
                    )
                })
                .collect(),
            token_expiry: None,
            consumer_running: false,
            paused: false,
            reloading: false,
            merging: None,
            settled_at: None,
            simulator: None,
            window: None,
            stuck: BTreeMap::new(),
            insecure: false,
            profile: None,
            next_reload: None,
        }
    }
}

impl StatusState {
    /// A stage's state; its error stays until the stage is ok again. True when what is
    /// shown changed. A new error text is logged once.
    pub fn on_stage(&mut self, stage: Stage, state: StageState, error: Option<String>) -> bool {
        let old = self.stages.get(&stage).cloned();
        let kept = old.as_ref().and_then(|v| v.error.clone());
        let error = match (&state, error) {
            (StageState::Ok, _) => None,
            (_, Some(text)) if kept.as_ref().is_some_and(|k| k.text == text) => kept,
            (_, Some(text)) => {
                tracing::warn!(stage = stage.name(), "{text}");
                Some(StageError {
                    text,
                    at: jiff::Timestamp::now(),
                })
            }
            (_, None) => kept,
        };
        let new = StageView { state, error };
        let changed = old.as_ref() != Some(&new);
        self.stages.insert(stage, new);
        changed
    }

    /// Stages with an error, in pipeline order.
    pub fn errors(&self) -> Vec<(Stage, &StageError)> {
        self.stages
            .iter()
            .filter_map(|(s, v)| v.error.as_ref().map(|e| (*s, e)))
            .collect()
    }
}
