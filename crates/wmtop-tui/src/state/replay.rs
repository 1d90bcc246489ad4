//! The replay dialog's state: where the replay starts as typed, checked as it is typed
//! (empty or `beginning`, a time, or `-2h` back from now), whether that time is matched
//! against message times (when Kafka took each message) or data times (the hours the
//! records carry), and the plan the pipeline worked out, for confirmation.

use tui_input::Input;
use wmtop_core::config::EpochMs;
use wmtop_core::kafka::{ReplayFrom, ReplayPart};

/// What a replay time is matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeMatch {
    /// When Kafka took each message (its timestamp).
    #[default]
    MessageTime,
    /// The hours the records inside the messages carry.
    DataTime,
}

impl TimeMatch {
    pub fn label(self) -> &'static str {
        match self {
            TimeMatch::MessageTime => "message times (when Kafka took each message)",
            TimeMatch::DataTime => "data times (the hours the records carry)",
        }
    }
}

/// The replay dialog.
#[derive(Default)]
pub struct ReplayState {
    pub input: Input,
    pub matching: TimeMatch,
    /// The plan, once asked for: None while it is worked out.
    pub plan: Option<Result<Vec<ReplayPart>, String>>,
    /// A replay was started and its load has not settled yet.
    pub running: bool,
}

impl ReplayState {
    /// Opens the dialog afresh.
    pub fn open(&mut self) {
        self.input.reset();
        self.plan = None;
    }

    /// Where the replay starts, as typed; an error says what is wrong with the text.
    pub fn from(&self) -> Result<ReplayFrom, String> {
        let text = self.input.value().trim();
        let ms = if text.is_empty() || text.eq_ignore_ascii_case("beginning") {
            return Ok(ReplayFrom::Beginning);
        } else if let Some(back) = text.strip_prefix('-') {
            let d: jiff::SignedDuration = back.trim().parse().map_err(|_| {
                format!("{back:?} is not a duration back from now (like -2h or -30m)")
            })?;
            jiff::Timestamp::now()
                .checked_sub(d)
                .map_err(|e| format!("-{back}: {e}"))?
                .as_millisecond()
        } else {
            text.parse::<EpochMs>()?.0
        };
        Ok(match self.matching {
            TimeMatch::MessageTime => ReplayFrom::Time(ms),
            TimeMatch::DataTime => ReplayFrom::DataTime(ms),
        })
    }

    /// What the typed text means, in words.
    pub fn meaning(&self) -> Result<String, String> {
        let utc = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .map(|t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string())
                .unwrap_or_else(|_| format!("{ms} ms"))
        };
        Ok(match self.from()? {
            ReplayFrom::Beginning => "from the first message still on the topic".into(),
            ReplayFrom::Time(ms) => {
                format!("from the first message Kafka took at or after {}", utc(ms))
            }
            ReplayFrom::DataTime(ms) => {
                format!("from the first message whose records reach {}", utc(ms))
            }
        })
    }

    pub fn toggle_matching(&mut self) {
        self.matching = match self.matching {
            TimeMatch::MessageTime => TimeMatch::DataTime,
            TimeMatch::DataTime => TimeMatch::MessageTime,
        };
    }
}
