//! A reload, asked for or on the schedule: fetch the series from the API (through
//! Keycloak; on the schedule, after a first successful fetch, only the new hours and the
//! revision window), publish one message per transaction, then wait until the consumer
//! has landed and settled them. Each stage's state and the per-transaction figures are
//! reported as they come, and the whole cycle once it ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::landing::{wait_landed, Landing};
use super::out::Out;
use super::protocol::{Cycle, CycleVerdict, MonitorEvent, Stage, StageState, Trigger};
use crate::kafka::{produce, Kafka};
use crate::source::api::{ApiClient, ApiError};
use crate::source::fresh::{self, Freshness, Planned};

/// What every reload shares.
#[derive(Clone)]
pub(super) struct Reloads {
    pub(super) kafka: Kafka,
    pub(super) api: Arc<ApiClient>,
    pub(super) out: Out,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) landing: watch::Receiver<Landing>,
    pub(super) fresh: Arc<Mutex<Freshness>>,
    pub(super) cycles: Arc<AtomicU64>,
}

/// Fetches, publishes and waits for the landing, telling each stage's state as it goes
/// and the cycle at the end (to the front end and /health).
pub(super) async fn run_reload(r: Reloads, trigger: Trigger) {
    let out = r.out.clone();
    out.send(MonitorEvent::Reloading(true));
    let started = Instant::now();
    let settings = r.kafka.settings();
    let planned = match trigger {
        Trigger::Schedule => r.fresh.lock().map(|f| f.plan(settings)).ok(),
        Trigger::Asked => None,
    }
    .unwrap_or_else(|| Freshness::default().plan(settings));
    let mut cycle = Cycle {
        number: r.cycles.fetch_add(1, Ordering::Relaxed) + 1,
        trigger,
        window: planned.window,
        asked: planned.ask,
        incremental: planned.incremental,
        transactions: 0,
        records: 0,
        bytes_fetched: 0,
        bytes_published: 0,
        messages_delivered: 0,
        new_rows: 0,
        revised_rows: 0,
        unchanged_rows: 0,
        set_aside: 0,
        verdict: CycleVerdict::Done,
        error: None,
        took: Duration::ZERO,
        ended_at: jiff::Timestamp::now(),
    };
    if let Err((verdict, error)) = cycle_steps(&r, &planned, &mut cycle).await {
        cycle.verdict = verdict;
        cycle.error = Some(error);
    }
    cycle.took = started.elapsed();
    cycle.ended_at = jiff::Timestamp::now();
    if let Some(ops) = &out.ops {
        ops.cycle_ended(cycle.verdict == CycleVerdict::Done);
    }
    tracing::info!("reload {}", cycle.json());
    out.send(MonitorEvent::Cycle(cycle));
    out.send(MonitorEvent::Reloading(false));
}

type Failed = (CycleVerdict, String);

/// Fetch, publish, land: the cycle's figures filled in as each step ends.
async fn cycle_steps(r: &Reloads, planned: &Planned, cycle: &mut Cycle) -> Result<(), Failed> {
    let out = &r.out;
    let settings = r.kafka.settings();
    let save = settings.last_fetch_path();
    let report = r
        .api
        .fetch(
            planned.ask,
            (!planned.incremental).then_some(save.as_path()),
            &r.stop,
            |e, attempt, _| {
                out.stage(
                    stage_of(e),
                    StageState::Retrying(attempt),
                    Some(e.to_string()),
                );
            },
        )
        .await;
    out.send(MonitorEvent::TokenExpiry(
        r.api.token_expires_in().await.map(|d| Instant::now() + d),
    ));
    let report = report.map_err(|e| {
        out.stage(stage_of(&e), StageState::Down, Some(e.to_string()));
        (CycleVerdict::Failed, e.to_string())
    })?;
    out.stage(Stage::Keycloak, StageState::Ok, None);
    out.stage(Stage::Api, StageState::Ok, None);
    let answer = report.answer;
    cycle.transactions = answer.transactions.len();
    cycle.records = answer.records();
    cycle.bytes_fetched = answer.bytes;
    let (accounting, newest) = {
        let a = answer.clone();
        let (save, planned) = (save.clone(), *planned);
        // The newest hour served, and the API's figures for the whole window (the saved
        // answer, kept whole).
        tokio::task::spawn_blocking(move || {
            let mut newest: Option<i64> = None;
            let tail = a.accounting_with(|row| {
                newest = newest.max(Some(row.timestamp.0));
            });
            if planned.incremental {
                match fresh::merge_saved(&save, &planned, &a) {
                    Ok(whole) => return (whole.accounting(), newest),
                    Err(e) => tracing::warn!("could not keep the saved answer whole: {e}"),
                }
            }
            (tail, newest)
        })
        .await
        .unwrap_or_default()
    };
    out.send(MonitorEvent::Fetched {
        per_transaction: accounting.into_iter().collect(),
        took: report.took,
        window: planned.window,
    });
    let before = r.landing.borrow().clone();
    let started = Instant::now();
    let published = produce::publish(&r.kafka, &answer).await;
    drop(answer);
    crate::runtime::memory::give_back();
    let last = match published {
        Ok(p) => {
            // The next scheduled fetch starts from here only once these hours are on
            // the topic: a failed publish is fetched again.
            if let Ok(mut f) = r.fresh.lock() {
                f.fetched(newest);
            }
            out.stage(Stage::Kafka, StageState::Ok, None);
            out.send(published_event(&p, started.elapsed()));
            cycle.bytes_published = p.bytes;
            cycle.messages_delivered = p.messages_delivered;
            p.last_offsets
        }
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            out.stage(Stage::Kafka, StageState::Down, Some(first.clone()));
            out.send(published_event(&report, started.elapsed()));
            cycle.bytes_published = report.bytes;
            cycle.messages_delivered = report.messages_delivered;
            return Err((CycleVerdict::Failed, first));
        }
        Err(e) => {
            out.stage(Stage::Kafka, StageState::Down, Some(e.to_string()));
            return Err((CycleVerdict::Failed, e.to_string()));
        }
    };
    let mut landing = r.landing.clone();
    let landed = wait_landed(&mut landing, &last, settings.max_wait.0).await;
    let (new, revised, unchanged, set_aside) = landing.borrow().since(&before);
    cycle.new_rows = new;
    cycle.revised_rows = revised;
    cycle.unchanged_rows = unchanged;
    cycle.set_aside = set_aside;
    landed.map_err(|e| (CycleVerdict::GaveUp, e))
}

/// The stage a fetch error belongs to.
fn stage_of(e: &ApiError) -> Stage {
    match e {
        ApiError::Auth(_) => Stage::Keycloak,
        ApiError::GaveUp { last, .. } if matches!(**last, ApiError::Auth(_)) => Stage::Keycloak,
        _ => Stage::Api,
    }
}

fn published_event(p: &produce::PublishReport, took: Duration) -> MonitorEvent {
    let mut per: BTreeMap<String, u64> = BTreeMap::new();
    for (name, n) in &p.per_transaction {
        *per.entry(name.clone()).or_default() += *n as u64;
    }
    MonitorEvent::Published {
        per_transaction: per.into_iter().collect(),
        delivered: p.messages_delivered,
        failed: p.messages_failed,
        took,
    }
}
