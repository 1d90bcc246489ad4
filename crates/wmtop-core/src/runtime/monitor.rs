//! The pipeline run live for a front end: the consumer as a long-lived background task
//! (pausable, restartable for a replay or a skip), reloads (fetch then publish) on
//! demand, the one lag sampler, ClickHouse counts (rows stored and distinct records)
//! refreshed after flushes, reconciliation, and one ad-hoc query at a time. Front ends
//! send [`Command`]s and receive [`MonitorEvent`]s on a bounded channel that never blocks
//! the pipeline: when the front end falls behind, events are dropped and counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::clickhouse::{Ch, QueryResult, Stored};
use crate::config::{Settings, Source};
use crate::kafka::produce;
pub use crate::kafka::sampler::LagRow;
use crate::kafka::{replay, Kafka, ReplayFrom, ReplayPart};
use crate::load::events::{Event, Events};
use crate::load::{self, ConsumeOptions, Verdict};
use crate::net::retry;
use crate::runtime::ops::Ops;
use crate::source::api::{Accounting, ApiClient, ApiError};
use crate::source::keycloak::{http_client, TokenSource};

/// What a front end asks for.
#[derive(Clone, Debug)]
pub enum Command {
    /// Fetch again and publish.
    Reload,
    /// Work out what a replay would re-read (answered with [`MonitorEvent::ReplayPlan`]).
    PlanReplay(ReplayFrom),
    /// Stop the consumer, move the group to the plan's offsets, start it again.
    Replay(Vec<ReplayPart>),
    /// Stop the consumer, record the message as a dead letter and move the group past
    /// it, start the consumer again.
    Skip { partition: i32, offset: i64 },
    /// Pause (true) or resume (false) the consumer.
    Pause(bool),
    /// Run an ad-hoc query; a new one cancels the one running.
    Query { id: u64, sql: String },
    /// Cancel the running query.
    CancelQuery,
    /// Reconcile API, topic and ClickHouse per transaction and hour.
    Check,
    /// Flush, commit and stop everything.
    Shutdown,
}

/// A stage of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    Keycloak,
    Api,
    Kafka,
    ClickHouse,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Keycloak, Stage::Api, Stage::Kafka, Stage::ClickHouse];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Keycloak => "Keycloak",
            Stage::Api => "API",
            Stage::Kafka => "Kafka",
            Stage::ClickHouse => "ClickHouse",
        }
    }

    fn ops_name(self) -> &'static str {
        match self {
            Stage::Keycloak => "keycloak",
            Stage::Api => "api",
            Stage::Kafka => "kafka",
            Stage::ClickHouse => "clickhouse",
        }
    }
}

/// How a stage is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageState {
    Unknown,
    Ok,
    Retrying(u32),
    Down,
}

/// What a front end is told.
#[derive(Clone, Debug)]
pub enum MonitorEvent {
    Stage {
        stage: Stage,
        state: StageState,
        error: Option<String>,
    },
    /// Where the series come from: the simulator's URL when it is the simulator.
    Source { simulator: Option<String> },
    /// When the access token expires (None: no token yet).
    TokenExpiry(Option<Instant>),
    /// A fetch finished: per transaction, records served and set aside.
    Fetched {
        per_transaction: Vec<(String, Accounting)>,
        took: Duration,
    },
    /// A publish finished: messages per transaction delivered.
    Published {
        per_transaction: Vec<(String, u64)>,
        delivered: usize,
        failed: usize,
        took: Duration,
    },
    /// A reload is running (true) or done (false).
    Reloading(bool),
    /// A fact from the consumer.
    Pipeline(Event),
    /// The consumer task is running (true) or stopped (false).
    ConsumerRunning(bool),
    /// Lag per partition, sampled now; an error when the sample failed.
    Lag(Result<Vec<LagRow>, String>),
    /// Rows stored and distinct records per transaction, as a plain query sees them.
    Counts(BTreeMap<String, Stored>),
    /// A replay's plan, for the front end to confirm.
    ReplayPlan(Result<Vec<ReplayPart>, String>),
    /// A replay was applied (messages to re-read), or refused.
    Replayed(Result<i64, String>),
    /// A skip was applied, or refused.
    Skipped(Result<(i32, i64), String>),
    /// A reconciliation finished.
    Checked(Result<crate::tools::check::Report, String>),
    /// A query finished, failed (the server's code and message first) or was cancelled.
    QueryDone {
        id: u64,
        result: Result<QueryResult, String>,
        took: Duration,
    },
}

/// The front end's handle.
pub struct Monitor {
    commands: mpsc::Sender<Command>,
    dropped: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Sends a command; false when the monitor has stopped.
    pub fn send(&self, c: Command) -> bool {
        self.commands.try_send(c).is_ok()
    }

    /// Events dropped because the front end fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Asks for a clean stop (flush, commit) and waits for it, at most `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let _ = self.commands.send(Command::Shutdown).await;
        let _ = tokio::time::timeout(limit, self.task).await;
    }
}

#[derive(Clone)]
struct Out {
    tx: mpsc::Sender<MonitorEvent>,
    dropped: Arc<AtomicU64>,
    ops: Option<Arc<Ops>>,
}

impl Out {
    fn send(&self, e: MonitorEvent) {
        if self.tx.try_send(e).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn stage(&self, stage: Stage, state: StageState, error: Option<String>) {
        if let Some(ops) = &self.ops {
            match state {
                StageState::Ok => ops.connected(stage.ops_name()),
                StageState::Retrying(_) | StageState::Down => ops.error(stage.ops_name()),
                StageState::Unknown => {}
            }
        }
        if let Some(e) = &error {
            tracing::warn!("{}: {e}", stage.name());
        }
        self.send(MonitorEvent::Stage {
            stage,
            state,
            error,
        });
    }
}

/// Options of a live run.
#[derive(Clone, Debug, Default)]
pub struct MonitorOptions {
    /// Let ad-hoc queries write (default: read-only).
    pub allow_writes: bool,
    /// Where to report for /health and /metrics.
    pub ops: Option<Arc<Ops>>,
    /// The simulator's URL when the series come from it.
    pub simulator: Option<String>,
}

/// Starts the live pipeline. `settings` must name the API and Keycloak to use (the
/// front end starts the simulator and points the settings at it when that is the
/// source). Events arrive on the returned receiver.
pub fn start(settings: Settings, opts: MonitorOptions) -> (Monitor, mpsc::Receiver<MonitorEvent>) {
    let (cmd_tx, cmd_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::channel(4096);
    let dropped = Arc::new(AtomicU64::new(0));
    let out = Out {
        tx: ev_tx,
        dropped: Arc::clone(&dropped),
        ops: opts.ops.clone(),
    };
    let task = tokio::spawn(control(settings, opts, cmd_rx, out));
    (
        Monitor {
            commands: cmd_tx,
            dropped,
            task,
        },
        ev_rx,
    )
}

struct ConsumerTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The API client, or why there is none.
fn api_client(settings: &Settings) -> Result<Arc<ApiClient>, String> {
    let Source::Api {
        api_url,
        keycloak_url,
    } = settings.source()
    else {
        return Err("no API or Keycloak URL to fetch from".into());
    };
    let http = http_client(settings).map_err(|e| e.to_string())?;
    let tokens = Arc::new(TokenSource::new(http.clone(), settings, &keycloak_url));
    Ok(Arc::new(ApiClient::new(http, tokens, settings, &api_url)))
}

async fn control(
    settings: Settings,
    opts: MonitorOptions,
    mut commands: mpsc::Receiver<Command>,
    out: Out,
) {
    out.send(MonitorEvent::Source {
        simulator: opts.simulator.clone(),
    });
    let api = match api_client(&settings) {
        Ok(a) => Some(a),
        Err(e) => {
            out.stage(Stage::Api, StageState::Down, Some(e));
            None
        }
    };
    let kafka = Kafka::new(&settings);
    let (pause_tx, pause_rx) = watch::channel(false);
    let (counts_dirty_tx, counts_dirty_rx) = watch::channel(true);
    let (stop_all_tx, stop_all) = watch::channel(false);
    let consumer_events = forward_consumer_events(out.clone(), counts_dirty_tx);
    let mut consumer = Some(spawn_consumer(
        &settings,
        pause_rx.clone(),
        consumer_events.clone(),
        out.clone(),
    ));
    let (samples, sampler) = crate::kafka::sampler::spawn_sampler(
        kafka.clone(),
        Duration::from_secs(1),
        true,
        stop_all.clone(),
    );
    let lag_task = tokio::spawn(forward_lag(samples, out.clone()));
    let counts_task = tokio::spawn(refresh_counts(
        settings.clone(),
        out.clone(),
        counts_dirty_rx,
        stop_all.clone(),
    ));
    let mut reload: Option<JoinHandle<()>> = None;
    let mut query: Option<(u64, String, JoinHandle<()>)> = None;
    let mut query_ch: Option<Ch> = None;

    while let Some(cmd) = commands.recv().await {
        match cmd {
            Command::Reload => {
                if reload.as_ref().is_some_and(|t| !t.is_finished()) {
                    continue;
                }
                let Some(api) = api.clone() else {
                    out.stage(
                        Stage::Api,
                        StageState::Down,
                        Some("no API to fetch from".into()),
                    );
                    continue;
                };
                reload = Some(tokio::spawn(run_reload(
                    kafka.clone(),
                    api,
                    out.clone(),
                    stop_all.clone(),
                )));
            }
            Command::PlanReplay(from) => {
                let k = kafka.clone();
                let out2 = out.clone();
                tokio::spawn(async move {
                    let plan = tokio::task::spawn_blocking(move || replay::plan(&k, from))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    out2.send(MonitorEvent::ReplayPlan(plan));
                });
            }
            Command::Replay(plan) => {
                if let Some(c) = consumer.take() {
                    stop_consumer(c).await;
                }
                let k = kafka.clone();
                let messages: i64 = plan.iter().map(ReplayPart::messages).sum();
                let applied = tokio::task::spawn_blocking(move || replay::apply(&k, &plan))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                out.send(MonitorEvent::Replayed(applied.map(|()| messages)));
                consumer = Some(spawn_consumer(
                    &settings,
                    pause_rx.clone(),
                    consumer_events.clone(),
                    out.clone(),
                ));
            }
            Command::Skip { partition, offset } => {
                if let Some(c) = consumer.take() {
                    stop_consumer(c).await;
                }
                let result = async {
                    let ch = Ch::connect(&settings).await.map_err(|e| e.to_string())?;
                    let loader = crate::clickhouse::Loader::prepare(ch, &settings.clickhouse_user)
                        .await
                        .map_err(|e| e.to_string())?;
                    crate::tools::redrive::skip(&settings, &loader, partition, offset)
                        .await
                        .map_err(|e| e.to_string())
                }
                .await;
                out.send(MonitorEvent::Skipped(
                    result.map(|s| (s.partition, s.offset)),
                ));
                consumer = Some(spawn_consumer(
                    &settings,
                    pause_rx.clone(),
                    consumer_events.clone(),
                    out.clone(),
                ));
            }
            Command::Pause(p) => {
                let _ = pause_tx.send(p);
            }
            Command::Query { id, sql } => {
                if let Some((_, qid, task)) = query.take() {
                    task.abort();
                    if let Some(ch) = &query_ch {
                        let _ = ch.kill_query(&qid).await;
                    }
                }
                if query_ch.is_none() {
                    match Ch::connect(&settings).await {
                        Ok(ch) => query_ch = Some(ch),
                        Err(e) => {
                            tracing::warn!("query: {e}");
                            out.send(MonitorEvent::QueryDone {
                                id,
                                result: Err(e.short()),
                                took: Duration::ZERO,
                            });
                            continue;
                        }
                    }
                }
                let Some(ch) = query_ch.clone() else { continue };
                let qid = format!("wmtop-{}-{id}", std::process::id());
                let out2 = out.clone();
                let allow_writes = opts.allow_writes;
                let qid2 = qid.clone();
                let task = tokio::spawn(async move {
                    let started = Instant::now();
                    let result = ch
                        .query_table(&sql, allow_writes, &qid2)
                        .await
                        .map_err(|e| {
                            tracing::warn!("query failed: {e}");
                            e.short()
                        });
                    out2.send(MonitorEvent::QueryDone {
                        id,
                        result,
                        took: started.elapsed(),
                    });
                });
                query = Some((id, qid, task));
            }
            Command::CancelQuery => {
                if let Some((id, qid, task)) = query.take() {
                    if !task.is_finished() {
                        task.abort();
                        if let Some(ch) = &query_ch {
                            let _ = ch.kill_query(&qid).await;
                        }
                        out.send(MonitorEvent::QueryDone {
                            id,
                            result: Err("cancelled".into()),
                            took: Duration::ZERO,
                        });
                    }
                }
            }
            Command::Check => {
                let s = settings.clone();
                let out2 = out.clone();
                tokio::spawn(async move {
                    let report = crate::tools::check::reconcile(&s)
                        .await
                        .map_err(|e| e.to_string());
                    out2.send(MonitorEvent::Checked(report));
                });
            }
            Command::Shutdown => break,
        }
    }
    let _ = stop_all_tx.send(true);
    if let Some(t) = reload.take() {
        t.abort();
    }
    if let Some((_, _, t)) = query.take() {
        t.abort();
    }
    if let Some(c) = consumer.take() {
        stop_consumer(c).await;
    }
    let _ = sampler.await;
    let _ = lag_task.await;
    let _ = counts_task.await;
}

async fn stop_consumer(c: ConsumerTask) {
    let _ = c.stop.send(true);
    let _ = c.task.await;
}

/// Consumer events go to the front end and /metrics, and mark the counts as stale.
fn forward_consumer_events(out: Out, counts_dirty: watch::Sender<bool>) -> Events {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            if let Some(ops) = &out.ops {
                ops.observe(&e);
            }
            match &e {
                Event::Flushed { .. } => {
                    out.stage(Stage::ClickHouse, StageState::Ok, None);
                    out.stage(Stage::Kafka, StageState::Ok, None);
                    let _ = counts_dirty.send(true);
                }
                Event::Settled(_) => {
                    let _ = counts_dirty.send(true);
                }
                Event::InsertRetry { attempt, error } => {
                    out.stage(
                        Stage::ClickHouse,
                        StageState::Retrying(*attempt),
                        Some(error.clone()),
                    );
                }
                _ => {}
            }
            out.send(MonitorEvent::Pipeline(e));
        }
    });
    Events::new(tx)
}

/// The consumer, run again after it ends with an error (the error shown on its stage).
fn spawn_consumer(
    settings: &Settings,
    pause: watch::Receiver<bool>,
    events: Events,
    out: Out,
) -> ConsumerTask {
    let (stop_tx, mut stop) = watch::channel(false);
    let settings = settings.clone();
    let task = tokio::spawn(async move {
        let mut attempt = 0u32;
        let mut waits = retry::delays(Duration::from_secs(1));
        out.send(MonitorEvent::ConsumerRunning(true));
        while !*stop.borrow() {
            let opts = ConsumeOptions {
                until_idle: None,
                pause: Some(pause.clone()),
            };
            let summary = load::run(&settings, opts, stop.clone(), events.clone()).await;
            if matches!(summary.verdict, Verdict::Done | Verdict::Interrupted) {
                break;
            }
            attempt += 1;
            let stage = match summary.waited_for.as_ref().map(|w| w.what) {
                Some("clickhouse") => Stage::ClickHouse,
                Some(_) => Stage::Kafka,
                None if summary
                    .error
                    .as_deref()
                    .is_some_and(|e| e.starts_with("ClickHouse")) =>
                {
                    Stage::ClickHouse
                }
                None => Stage::Kafka,
            };
            let state = if summary.verdict == Verdict::Failed {
                StageState::Down
            } else {
                StageState::Retrying(attempt)
            };
            out.stage(stage, state, summary.error.clone());
            let wait = waits.next().unwrap_or(retry::MAX_DELAY);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|v| *v) => {}
            }
        }
        out.send(MonitorEvent::ConsumerRunning(false));
    });
    ConsumerTask {
        stop: stop_tx,
        task,
    }
}

async fn run_reload(kafka: Kafka, api: Arc<ApiClient>, out: Out, stop: watch::Receiver<bool>) {
    out.send(MonitorEvent::Reloading(true));
    let save = kafka.settings().last_fetch_path();
    let report = api
        .fetch(Some(&save), &stop, |e, attempt, _| {
            let stage = match e {
                ApiError::Auth(_) => Stage::Keycloak,
                _ => Stage::Api,
            };
            out.stage(stage, StageState::Retrying(attempt), Some(e.to_string()));
        })
        .await;
    out.send(MonitorEvent::TokenExpiry(
        api.token_expires_in().await.map(|d| Instant::now() + d),
    ));
    let report = match report {
        Ok(r) => {
            out.stage(Stage::Keycloak, StageState::Ok, None);
            out.stage(Stage::Api, StageState::Ok, None);
            r
        }
        Err(e) => {
            let stage = match &e {
                ApiError::Auth(_) => Stage::Keycloak,
                ApiError::GaveUp { last, .. } if matches!(**last, ApiError::Auth(_)) => {
                    Stage::Keycloak
                }
                _ => Stage::Api,
            };
            out.stage(stage, StageState::Down, Some(e.to_string()));
            out.send(MonitorEvent::Reloading(false));
            return;
        }
    };
    let answer = report.answer;
    let accounting = {
        let a = answer.clone();
        tokio::task::spawn_blocking(move || a.accounting())
            .await
            .unwrap_or_default()
    };
    out.send(MonitorEvent::Fetched {
        per_transaction: accounting.into_iter().collect(),
        took: report.took,
    });
    let started = Instant::now();
    match produce::publish(&kafka, &answer).await {
        Ok(p) => {
            out.stage(Stage::Kafka, StageState::Ok, None);
            out.send(published(&p, started.elapsed()));
        }
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            out.stage(Stage::Kafka, StageState::Down, Some(first));
            out.send(published(&report, started.elapsed()));
        }
        Err(e) => out.stage(Stage::Kafka, StageState::Down, Some(e.to_string())),
    }
    out.send(MonitorEvent::Reloading(false));
}

fn published(p: &produce::PublishReport, took: Duration) -> MonitorEvent {
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

/// The lag sampler's samples, to the front end and /metrics.
async fn forward_lag(
    mut samples: watch::Receiver<Option<crate::kafka::sampler::LagSample>>,
    out: Out,
) {
    while samples.changed().await.is_ok() {
        let Some(sample) = samples.borrow_and_update().clone() else {
            continue;
        };
        match &sample.rows {
            Ok(rows) => {
                if let Some(ops) = &out.ops {
                    ops.set_lag(&rows.iter().map(|r| r.lag.clone()).collect::<Vec<_>>());
                }
                out.stage(Stage::Kafka, StageState::Ok, None);
            }
            Err(e) => out.stage(Stage::Kafka, StageState::Down, Some(e.clone())),
        }
        out.send(MonitorEvent::Lag(sample.rows));
    }
}

/// Re-reads rows stored and distinct records per transaction after flushes (at most
/// every 2 s) and every 15 s anyway, so rows written by anyone else show too.
async fn refresh_counts(
    settings: Settings,
    out: Out,
    mut dirty: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ch: Option<Ch> = None;
    // Count once at start, then after flushes.
    dirty.mark_changed();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            changed = dirty.changed() => if changed.is_err() { break },
            _ = tokio::time::sleep(Duration::from_secs(15)) => {}
        }
        if ch.is_none() {
            match Ch::connect(&settings).await {
                Ok(c) => ch = Some(c),
                Err(e) => out.stage(Stage::ClickHouse, StageState::Down, Some(e.to_string())),
            }
        }
        if let Some(c) = &ch {
            match c.stored_per_transaction().await {
                Ok(counts) => out.send(MonitorEvent::Counts(counts)),
                Err(e) => {
                    out.stage(Stage::ClickHouse, StageState::Down, Some(e.to_string()));
                    ch = None;
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
