//! The monitor's control loop: what each [`Command`] does (reloads, replay plans and
//! replays, skips, pause, one ad-hoc query at a time, reconciliation), with the tasks it
//! starts at the beginning and stops in order at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::consumer::{forward_consumer_events, spawn_consumer, stop_consumer};
use super::feeds::{forward_lag, refresh_counts, watch_replicas};
use super::out::Out;
use super::protocol::{Command, MonitorEvent, MonitorOptions, Stage, StageState};
use super::reload::run_reload;
use crate::clickhouse::Ch;
use crate::config::{Settings, Source};
use crate::kafka::{replay, sampler, Kafka, ReplayPart};
use crate::source::api::ApiClient;
use crate::source::keycloak::{http_client, TokenSource};

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

/// The monitor's task: starts the consumer, the lag sampler and the counts, then
/// carries out commands until told to shut down, and stops everything in order.
pub(super) async fn control(
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
    let (samples, sampler_task) = sampler::spawn_sampler(
        kafka.clone(),
        Duration::from_secs(1),
        true,
        stop_all.clone(),
    );
    // The consumer, started again the same way after a replay or a skip.
    let start_consumer = || {
        spawn_consumer(
            &settings,
            pause_rx.clone(),
            samples.clone(),
            consumer_events.clone(),
            out.clone(),
        )
    };
    let mut consumer = Some(start_consumer());
    let lag_task = tokio::spawn(forward_lag(samples.clone(), out.clone()));
    let counts_task = tokio::spawn(refresh_counts(
        settings.clone(),
        out.clone(),
        counts_dirty_rx,
        stop_all.clone(),
    ));
    let replicas_task = tokio::spawn(watch_replicas(
        settings.clone(),
        out.clone(),
        stop_all.clone(),
    ));
    let mut reload: Option<JoinHandle<()>> = None;
    let mut queries = Queries::default();

    while let Some(cmd) = commands.recv().await {
        match cmd {
            Command::Reload => start_reload(&mut reload, api.as_ref(), &kafka, &out, &stop_all),
            Command::PlanReplay(from) => plan_replay(&kafka, &out, from),
            Command::Replay(plan) => {
                if let Some(c) = consumer.take() {
                    stop_consumer(c).await;
                }
                replay_now(&kafka, &out, plan).await;
                consumer = Some(start_consumer());
            }
            Command::Skip { partition, offset } => {
                if let Some(c) = consumer.take() {
                    stop_consumer(c).await;
                }
                skip_now(&settings, &out, partition, offset).await;
                consumer = Some(start_consumer());
            }
            Command::Pause(p) => {
                let _ = pause_tx.send(p);
            }
            Command::Query { id, sql } => {
                queries
                    .start(&settings, &out, opts.allow_writes, id, sql)
                    .await;
            }
            Command::CancelQuery => queries.cancel(&out).await,
            Command::Check => check(&settings, &out),
            Command::Inspect { name } => super::tools::inspect(&settings, &kafka, &out, name),
            Command::ListDeadLetters => super::tools::list_dead_letters(&settings, &out),
            Command::Redrive => super::tools::redrive(&settings, &out),
            Command::Shutdown => break,
        }
    }
    let _ = stop_all_tx.send(true);
    if let Some(t) = reload.take() {
        t.abort();
    }
    if let Some((_, _, t)) = queries.running.take() {
        t.abort();
    }
    if let Some(c) = consumer.take() {
        stop_consumer(c).await;
    }
    for task in [sampler_task, lag_task, counts_task, replicas_task] {
        let _ = task.await;
    }
}

/// Starts a reload (fetch again and publish) unless one is running; without an API to
/// fetch from, says so.
fn start_reload(
    reload: &mut Option<JoinHandle<()>>,
    api: Option<&Arc<ApiClient>>,
    kafka: &Kafka,
    out: &Out,
    stop: &watch::Receiver<bool>,
) {
    if reload.as_ref().is_some_and(|t| !t.is_finished()) {
        return;
    }
    let Some(api) = api else {
        out.stage(
            Stage::Api,
            StageState::Down,
            Some("no API to fetch from".into()),
        );
        return;
    };
    *reload = Some(tokio::spawn(run_reload(
        kafka.clone(),
        Arc::clone(api),
        out.clone(),
        stop.clone(),
    )));
}

/// Plans a replay from `from` and sends the plan.
fn plan_replay(kafka: &Kafka, out: &Out, from: replay::ReplayFrom) {
    let k = kafka.clone();
    let out = out.clone();
    tokio::spawn(async move {
        let plan = tokio::task::spawn_blocking(move || replay::plan(&k, from))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        out.send(MonitorEvent::ReplayPlan(plan));
    });
}

/// Moves the group's offsets back as `plan` says (the consumer is stopped) and says how
/// many messages will be read again.
async fn replay_now(kafka: &Kafka, out: &Out, plan: Vec<ReplayPart>) {
    let k = kafka.clone();
    let messages: i64 = plan.iter().map(ReplayPart::messages).sum();
    let applied = tokio::task::spawn_blocking(move || replay::apply(&k, &plan))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    out.send(MonitorEvent::Replayed(applied.map(|()| messages)));
}

/// Skips the message at `partition`:`offset` (the consumer is stopped), keeping it as a
/// dead letter.
async fn skip_now(settings: &Settings, out: &Out, partition: i32, offset: i64) {
    let result = async {
        let ch = Ch::connect(settings).await.map_err(|e| e.to_string())?;
        let loader = crate::clickhouse::Loader::prepare(ch, settings)
            .await
            .map_err(|e| e.to_string())?;
        crate::tools::redrive::skip(settings, &loader, partition, offset)
            .await
            .map_err(|e| e.to_string())
    }
    .await;
    out.send(MonitorEvent::Skipped(
        result.map(|s| (s.partition, s.offset)),
    ));
}

/// Reconciles the last fetch, the topic and the table, in the background.
fn check(settings: &Settings, out: &Out) {
    let s = settings.clone();
    let out = out.clone();
    tokio::spawn(async move {
        let report = crate::tools::check::reconcile(&s)
            .await
            .map_err(|e| e.to_string());
        out.send(MonitorEvent::Checked(report));
    });
}

/// The ad-hoc query pane's one query at a time, on a connection of its own.
#[derive(Default)]
struct Queries {
    /// (id, ClickHouse query id, task).
    running: Option<(u64, String, JoinHandle<()>)>,
    ch: Option<Ch>,
}

impl Queries {
    /// Runs `sql` (the one before it is cancelled, on the server too).
    async fn start(
        &mut self,
        settings: &Settings,
        out: &Out,
        allow_writes: bool,
        id: u64,
        sql: String,
    ) {
        if let Some((_, qid, task)) = self.running.take() {
            task.abort();
            if let Some(ch) = &self.ch {
                let _ = ch.kill_query(&qid).await;
            }
        }
        if self.ch.is_none() {
            match Ch::connect(settings).await {
                Ok(ch) => self.ch = Some(ch),
                Err(e) => {
                    tracing::warn!("query: {e}");
                    out.send(MonitorEvent::QueryDone {
                        id,
                        result: Err(e.short()),
                        took: Duration::ZERO,
                    });
                    return;
                }
            }
        }
        let Some(ch) = self.ch.clone() else { return };
        let qid = format!("wmtop-{}-{id}", std::process::id());
        let out = out.clone();
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
            out.send(MonitorEvent::QueryDone {
                id,
                result,
                took: started.elapsed(),
            });
        });
        self.running = Some((id, qid, task));
    }

    /// Cancels the running query, on the server too, and says so.
    async fn cancel(&mut self, out: &Out) {
        if let Some((id, qid, task)) = self.running.take() {
            if !task.is_finished() {
                task.abort();
                if let Some(ch) = &self.ch {
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
}
