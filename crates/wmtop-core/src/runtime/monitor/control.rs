//! The monitor's control loop: what each [`Command`] does (reloads, replay plans and
//! replays, skips, pause, one ad-hoc query at a time, reconciliation), the reload
//! schedule (`reload_every`), with the tasks it starts at the beginning and stops in
//! order at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::consumer::{forward_consumer_events, spawn_consumer, stop_consumer, ConsumerTask};
use super::feeds::{forward_lag, refresh_counts, watch_replicas};
use super::landing::Landing;
use super::out::Out;
use super::protocol::{Command, MonitorEvent, MonitorOptions, Stage, StageState, Trigger};
use super::reload::{run_reload, Reloads};
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
/// carries out commands and scheduled reloads until told to shut down, and stops
/// everything in order.
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
    let (landing_tx, landing) = watch::channel(Landing::default());
    let (stop_all_tx, stop_all) = watch::channel(false);
    let events = forward_consumer_events(out.clone(), counts_dirty_tx, landing_tx);
    let (samples, sampler_task) = sampler::spawn_sampler(
        kafka.clone(),
        Duration::from_secs(1),
        true,
        stop_all.clone(),
    );
    let mut tasks = vec![
        sampler_task,
        tokio::spawn(forward_lag(samples.clone(), out.clone())),
    ];
    if opts.panes {
        tasks.push(tokio::spawn(refresh_counts(
            settings.clone(),
            out.clone(),
            counts_dirty_rx,
            stop_all.clone(),
        )));
        tasks.push(tokio::spawn(watch_replicas(
            settings.clone(),
            out.clone(),
            stop_all.clone(),
        )));
    }
    let consumers = Consumers {
        settings: settings.clone(),
        pause: pause_rx,
        samples,
        events,
        out: out.clone(),
    };
    let reloads = api.map(|api| Reloads {
        kafka: kafka.clone(),
        api,
        out: out.clone(),
        stop: stop_all.clone(),
        landing,
        fresh: Default::default(),
        cycles: Default::default(),
    });
    let mut c = Control {
        consumer: Some(consumers.spawn()),
        consumers,
        schedule: Schedule::new(settings.reload_every.map(|s| s.0), &out),
        settings,
        opts,
        kafka,
        out,
        pause: pause_tx,
        reloads,
        reload: None,
        queries: Queries::default(),
    };
    loop {
        let next = c.schedule.next;
        let cmd = tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(Command::Shutdown) | None => break,
                Some(cmd) => cmd,
            },
            () = sleep_until(next) => {
                c.reload(Trigger::Schedule);
                continue;
            }
        };
        c.carry_out(cmd).await;
    }
    let _ = stop_all_tx.send(true);
    c.stop().await;
    for task in tasks {
        let _ = task.await;
    }
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Starts the consumer, again the same way after a replay or a skip.
struct Consumers {
    settings: Settings,
    pause: watch::Receiver<bool>,
    samples: watch::Receiver<Option<sampler::LagSample>>,
    events: crate::load::events::Events,
    out: Out,
}

impl Consumers {
    fn spawn(&self) -> ConsumerTask {
        spawn_consumer(
            &self.settings,
            self.pause.clone(),
            self.samples.clone(),
            self.events.clone(),
            self.out.clone(),
        )
    }
}

/// When the next scheduled reload is due (`reload_every`): the first at once, then one
/// interval after each reload started, by the schedule or by a key.
struct Schedule {
    every: Option<Duration>,
    next: Option<tokio::time::Instant>,
    out: Out,
}

impl Schedule {
    fn new(every: Option<Duration>, out: &Out) -> Schedule {
        if let (Some(every), Some(ops)) = (every, &out.ops) {
            ops.schedule(every);
        }
        let s = Schedule {
            every,
            next: every.map(|_| tokio::time::Instant::now()),
            out: out.clone(),
        };
        s.tell();
        s
    }

    /// A reload started (or was due while one ran): the next one interval from now.
    fn restart(&mut self) {
        if let Some(every) = self.every {
            self.next = Some(tokio::time::Instant::now() + every);
            self.tell();
        }
    }

    fn tell(&self) {
        self.out
            .send(MonitorEvent::NextReload(self.next.map(|t| t.into_std())));
    }
}

/// The monitor's running parts, as the control loop holds them.
struct Control {
    settings: Settings,
    opts: MonitorOptions,
    kafka: Kafka,
    out: Out,
    pause: watch::Sender<bool>,
    consumers: Consumers,
    consumer: Option<ConsumerTask>,
    reloads: Option<Reloads>,
    reload: Option<JoinHandle<()>>,
    schedule: Schedule,
    queries: Queries,
}

impl Control {
    /// Carries out one command (not Shutdown: the loop ends on it).
    async fn carry_out(&mut self, cmd: Command) {
        let (settings, out) = (&self.settings, &self.out);
        match cmd {
            Command::Reload => self.reload(Trigger::Asked),
            Command::PlanReplay(from) => plan_replay(&self.kafka, out, from),
            Command::Replay(plan) => {
                if let Some(c) = self.consumer.take() {
                    stop_consumer(c).await;
                }
                replay_now(&self.kafka, out, plan).await;
                self.consumer = Some(self.consumers.spawn());
            }
            Command::Skip { partition, offset } => {
                if let Some(c) = self.consumer.take() {
                    stop_consumer(c).await;
                }
                skip_now(settings, out, partition, offset).await;
                self.consumer = Some(self.consumers.spawn());
            }
            Command::Pause(p) => {
                let _ = self.pause.send(p);
            }
            Command::Query { id, sql } => {
                let allow = self.opts.allow_writes;
                self.queries.start(settings, out, allow, id, sql).await;
            }
            Command::CancelQuery => self.queries.cancel(out).await,
            Command::Check => check(settings, out),
            Command::Inspect { name } => super::tools::inspect(settings, &self.kafka, out, name),
            Command::ListDeadLetters => super::tools::list_dead_letters(settings, out),
            Command::Redrive => super::tools::redrive(settings, out),
            Command::Shutdown => {}
        }
    }

    /// Starts a reload unless one is running (a scheduled one then waits for the next
    /// tick: reloads never pile up), and restarts the countdown; without an API to
    /// fetch from, says so.
    fn reload(&mut self, trigger: Trigger) {
        self.schedule.restart();
        if self.reload.as_ref().is_some_and(|t| !t.is_finished()) {
            tracing::info!("a reload is still running: the next one waits for the schedule");
            return;
        }
        let Some(reloads) = &self.reloads else {
            self.out.stage(
                Stage::Api,
                StageState::Down,
                Some("no API to fetch from".into()),
            );
            return;
        };
        self.reload = Some(tokio::spawn(run_reload(reloads.clone(), trigger)));
    }

    /// Stops the reload, the query and the consumer (which flushes and commits).
    async fn stop(&mut self) {
        if let Some(t) = self.reload.take() {
            t.abort();
        }
        if let Some((_, _, t)) = self.queries.running.take() {
            t.abort();
        }
        if let Some(c) = self.consumer.take() {
            stop_consumer(c).await;
        }
    }
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
