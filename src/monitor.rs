//! The pipeline run live for a front end: the consumer as a long-lived background task
//! (pausable, restartable for a replay), reloads (fetch then publish) on demand, a lag
//! sampler, ClickHouse row counts refreshed after flushes, and one ad-hoc query at a time.
//! Front ends send [`Command`]s and receive [`MonitorEvent`]s on a bounded channel that
//! never blocks the pipeline: when the front end falls behind, events are dropped and
//! counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::api::ApiClient;
use crate::auth::{http_client, TokenSource};
use crate::config::Settings;
use crate::consume::{self, ConsumeError, ConsumeOptions};
use crate::events::{Event, Events};
use crate::kafka::{self, PartitionLag, ReplayFrom, ReplayPart};
use crate::ops::Ops;
use crate::produce;
use crate::sink::{QueryResult, Sink};

/// What a front end asks for.
#[derive(Clone, Debug)]
pub enum Command {
    /// Fetch again and publish.
    Reload,
    /// Work out what a replay would re-read (answered with [`MonitorEvent::ReplayPlan`]).
    PlanReplay(ReplayFrom),
    /// Stop the consumer, move the group to the plan's offsets, start it again.
    Replay(Vec<ReplayPart>),
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
}

/// How a stage is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageState {
    Unknown,
    Ok,
    Retrying(u32),
    Down,
}

/// One partition's lag with its age: how old the oldest uncommitted message is.
#[derive(Clone, Debug, PartialEq)]
pub struct LagRow {
    pub lag: PartitionLag,
    /// Age of the oldest message not yet committed; None when unknown or no lag.
    pub oldest_age: Option<Duration>,
}

/// What a front end is told.
#[derive(Clone, Debug)]
pub enum MonitorEvent {
    Stage {
        stage: Stage,
        state: StageState,
        error: Option<String>,
    },
    /// When the access token expires (None: no token yet).
    TokenExpiry(Option<Instant>),
    /// A fetch finished: records per transaction the API served.
    Fetched {
        per_transaction: Vec<(String, u64)>,
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
    /// Lag per partition, sampled now.
    Lag(Vec<LagRow>),
    /// Rows per transaction in ClickHouse (exact).
    Counts(BTreeMap<String, u64>),
    /// A replay's plan, for the front end to confirm.
    ReplayPlan(Result<Vec<ReplayPart>, String>),
    /// A replay was applied.
    Replayed(Result<i64, String>),
    /// A reconciliation finished.
    Checked(Result<crate::check::Report, String>),
    /// A query finished, failed or was cancelled.
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
            let name = match stage {
                Stage::Keycloak => "keycloak",
                Stage::Api => "api",
                Stage::Kafka => "kafka",
                Stage::ClickHouse => "clickhouse",
            };
            match state {
                StageState::Ok => ops.connected(name),
                StageState::Retrying(_) | StageState::Down => ops.error(name),
                StageState::Unknown => {}
            }
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
}

/// Starts the live pipeline. Events arrive on the returned receiver.
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

async fn control(
    settings: Settings,
    opts: MonitorOptions,
    mut commands: mpsc::Receiver<Command>,
    out: Out,
) {
    let http = match http_client(&settings) {
        Ok(h) => h,
        Err(e) => {
            out.stage(
                Stage::Api,
                StageState::Down,
                Some(format!("HTTP client: {e}")),
            );
            return;
        }
    };
    let tokens = Arc::new(TokenSource::new(http.clone(), &settings));
    let api = Arc::new(ApiClient::new(http, Arc::clone(&tokens), &settings));
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
    let lag_task = tokio::spawn(sample_lag(settings.clone(), out.clone(), stop_all.clone()));
    let counts_task = tokio::spawn(refresh_counts(
        settings.clone(),
        out.clone(),
        counts_dirty_rx,
        stop_all.clone(),
    ));
    let mut reload: Option<JoinHandle<()>> = None;
    let mut query: Option<(String, JoinHandle<()>)> = None;
    let mut query_sink: Option<Sink> = None;

    while let Some(cmd) = commands.recv().await {
        match cmd {
            Command::Reload => {
                if reload.as_ref().is_some_and(|t| !t.is_finished()) {
                    continue;
                }
                reload = Some(tokio::spawn(run_reload(
                    settings.clone(),
                    Arc::clone(&api),
                    Arc::clone(&tokens),
                    out.clone(),
                )));
            }
            Command::PlanReplay(from) => {
                let s = settings.clone();
                let out2 = out.clone();
                tokio::spawn(async move {
                    let plan = tokio::task::spawn_blocking(move || kafka::replay_plan(&s, from))
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
                let s = settings.clone();
                let messages: i64 = plan.iter().map(ReplayPart::messages).sum();
                let applied = tokio::task::spawn_blocking(move || kafka::apply_replay(&s, &plan))
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
            Command::Pause(p) => {
                let _ = pause_tx.send(p);
            }
            Command::Query { id, sql } => {
                if let Some((qid, task)) = query.take() {
                    task.abort();
                    if let Some(sink) = &query_sink {
                        let _ = sink.kill_query(&qid).await;
                    }
                }
                if query_sink.is_none() {
                    query_sink = Sink::connect(&settings).await.ok();
                }
                let Some(sink) = query_sink.clone() else {
                    out.send(MonitorEvent::QueryDone {
                        id,
                        result: Err("ClickHouse is not reachable".into()),
                        took: Duration::ZERO,
                    });
                    continue;
                };
                let qid = format!("wmtop-{}-{id}", std::process::id());
                let out2 = out.clone();
                let readonly = !opts.allow_writes;
                let qid2 = qid.clone();
                let task = tokio::spawn(async move {
                    let started = Instant::now();
                    let result = sink
                        .query_table(&sql, readonly, &qid2)
                        .await
                        .map_err(|e| e.to_string());
                    out2.send(MonitorEvent::QueryDone {
                        id,
                        result,
                        took: started.elapsed(),
                    });
                });
                query = Some((qid, task));
            }
            Command::CancelQuery => {
                if let Some((qid, task)) = query.take() {
                    if !task.is_finished() {
                        task.abort();
                        if let Some(sink) = &query_sink {
                            let _ = sink.kill_query(&qid).await;
                        }
                        let id = qid
                            .rsplit('-')
                            .next()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
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
                    let report = crate::check::reconcile(&s).await.map_err(|e| e.to_string());
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
    if let Some((_, t)) = query.take() {
        t.abort();
    }
    if let Some(c) = consumer.take() {
        stop_consumer(c).await;
    }
    let _ = lag_task.await;
    let _ = counts_task.await;
}

async fn stop_consumer(c: ConsumerTask) {
    let _ = c.stop.send(true);
    let _ = c.task.await;
}

/// Consumer events go to the front end and mark the counts as stale.
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
        out.send(MonitorEvent::ConsumerRunning(true));
        while !*stop.borrow() {
            let sink = match Sink::connect(&settings).await {
                Ok(s) => {
                    out.stage(Stage::ClickHouse, StageState::Ok, None);
                    s
                }
                Err(e) => {
                    attempt += 1;
                    out.stage(
                        Stage::ClickHouse,
                        StageState::Retrying(attempt),
                        Some(e.to_string()),
                    );
                    backoff(attempt, &mut stop).await;
                    continue;
                }
            };
            let opts = ConsumeOptions {
                until_idle: None,
                max_insert_attempts: None,
                pause: Some(pause.clone()),
            };
            match consume::run(&settings, sink, opts, stop.clone(), events.clone()).await {
                Ok(_) => break,
                Err(e) => {
                    attempt += 1;
                    let stage = match e {
                        ConsumeError::Kafka(_) => Stage::Kafka,
                        _ => Stage::ClickHouse,
                    };
                    out.stage(stage, StageState::Retrying(attempt), Some(e.to_string()));
                    backoff(attempt, &mut stop).await;
                }
            }
        }
        out.send(MonitorEvent::ConsumerRunning(false));
    });
    ConsumerTask {
        stop: stop_tx,
        task,
    }
}

async fn backoff(attempt: u32, stop: &mut watch::Receiver<bool>) {
    let wait = crate::retry::backoff(attempt, Duration::from_millis(250));
    tokio::select! {
        _ = tokio::time::sleep(wait) => {}
        _ = stop.wait_for(|v| *v) => {}
    }
}

async fn run_reload(settings: Settings, api: Arc<ApiClient>, tokens: Arc<TokenSource>, out: Out) {
    out.send(MonitorEvent::Reloading(true));
    let report = api.fetch(Some(&settings.last_fetch_path())).await;
    out.send(MonitorEvent::TokenExpiry(
        tokens.expires_in().await.map(|d| Instant::now() + d),
    ));
    let report = match report {
        Ok(r) => {
            out.stage(Stage::Keycloak, StageState::Ok, None);
            let state = if r.attempts > 1 {
                StageState::Retrying(r.attempts - 1)
            } else {
                StageState::Ok
            };
            out.stage(Stage::Api, state, None);
            r
        }
        Err(e) => {
            let stage = match e {
                crate::api::ApiError::Auth(_) => Stage::Keycloak,
                _ => Stage::Api,
            };
            out.stage(stage, StageState::Down, Some(e.to_string()));
            out.send(MonitorEvent::Reloading(false));
            return;
        }
    };
    out.send(MonitorEvent::Fetched {
        per_transaction: report
            .answer
            .records_per_transaction()
            .into_iter()
            .collect(),
        took: report.took,
    });
    let started = Instant::now();
    match produce::publish(&settings, &report.answer).await {
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

/// Samples lag every second on a blocking thread; finds the age of the oldest
/// uncommitted message by peeking at it (cached per offset).
async fn sample_lag(settings: Settings, out: Out, mut stop: watch::Receiver<bool>) {
    let (tx, mut rx) = mpsc::channel::<Result<Vec<LagRow>, String>>(1);
    let stop_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&stop_flag);
    let worker = tokio::task::spawn_blocking(move || {
        let mut ages: HashMap<(i32, i64), i64> = HashMap::new();
        let mut clients = None;
        while !flag.load(Ordering::Relaxed) {
            let sampled = (|| {
                if clients.is_none() {
                    let c: rdkafka::consumer::BaseConsumer = kafka::consumer_config(&settings)
                        .create()
                        .map_err(|e| e.to_string())?;
                    let p = kafka::peek_consumer(&settings).map_err(|e| e.to_string())?;
                    clients = Some((c, p));
                }
                let Some((c, peek)) = clients.as_ref() else {
                    return Err("no Kafka client".to_string());
                };
                let lags = kafka::lag(c, &settings).map_err(|e| e.to_string())?;
                let now_ms = jiff::Timestamp::now().as_millisecond();
                Ok(lags
                    .into_iter()
                    .map(|l| {
                        let oldest_age = match (l.lag, l.committed.unwrap_or(l.low).max(l.low)) {
                            (Some(n), from) if n > 0 => {
                                let ts = match ages.get(&(l.partition, from)) {
                                    Some(ts) => Some(*ts),
                                    None => {
                                        let ts = kafka::message_time(
                                            peek,
                                            &settings.topic,
                                            l.partition,
                                            from,
                                        );
                                        if let Some(ts) = ts {
                                            ages.insert((l.partition, from), ts);
                                        }
                                        ts
                                    }
                                };
                                ts.map(|ts| {
                                    Duration::from_millis(u64::try_from(now_ms - ts).unwrap_or(0))
                                })
                            }
                            _ => None,
                        };
                        LagRow { lag: l, oldest_age }
                    })
                    .collect())
            })();
            if sampled.is_err() {
                clients = None;
            }
            if tx.blocking_send(sampled).is_err() {
                break;
            }
            if ages.len() > 10_000 {
                ages.clear();
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            got = rx.recv() => match got {
                Some(Ok(rows)) => {
                    if let Some(ops) = &out.ops {
                        ops.set_lag(&rows.iter().map(|r| r.lag.clone()).collect::<Vec<_>>());
                    }
                    out.stage(Stage::Kafka, StageState::Ok, None);
                    out.send(MonitorEvent::Lag(rows));
                }
                Some(Err(e)) => {
                    out.stage(Stage::Kafka, StageState::Down, Some(e));
                    out.send(MonitorEvent::Lag(Vec::new()));
                }
                None => break,
            }
        }
    }
    stop_flag.store(true, Ordering::Relaxed);
    drop(rx);
    let _ = worker.await;
}

/// Re-reads rows per transaction after flushes, at most every 2 s.
async fn refresh_counts(
    settings: Settings,
    out: Out,
    mut dirty: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut sink: Option<Sink> = None;
    // Count once at start, then after flushes.
    dirty.mark_changed();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            changed = dirty.changed() => if changed.is_err() { break },
        }
        if sink.is_none() {
            sink = Sink::connect(&settings).await.ok();
        }
        if let Some(s) = &sink {
            match s.rows_per_transaction().await {
                Ok(c) => out.send(MonitorEvent::Counts(c)),
                Err(e) => {
                    out.stage(Stage::ClickHouse, StageState::Down, Some(e.to_string()));
                    sink = None;
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}
