//! The headless commands: each runs one part of the pipeline from the library, prints one
//! JSON summary line on stdout (also when it fails, with the reason) and returns the exit
//! code: 0 done, 1 failed or gave up, 128 + the signal when interrupted. Logs go to
//! stderr.

use std::hash::{BuildHasher, Hasher};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use tokio::sync::watch;

use wmtop::api::{self, Answer, ApiClient};
use wmtop::auth::{http_client, TokenSource};
use wmtop::check;
use wmtop::clickhouse::{compat, Ch, Loader, ServerVersion};
use wmtop::config::{EpochMs, Settings, Source};
use wmtop::consume::{self, ConsumeOptions, ConsumeSummary, Verdict};
use wmtop::events::Events;
use wmtop::kafka::{lag, replay, Kafka, ReplayFrom};
use wmtop::ops::{self, Ops};
use wmtop::produce;
use wmtop::queries;
use wmtop::redact::mask_url;
use wmtop::secret::Secret;
use wmtop::sim;

use super::{
    CheckArgs, ConfigArgs, ConsumeArgs, DeadLettersArgs, Format, ProduceArgs, QueryArgs, RunArgs,
    SchemaArgs, SimArgs,
};

/// Turns true on SIGINT, SIGTERM or SIGHUP, and remembers which.
#[derive(Clone)]
pub struct Signals {
    pub stop: watch::Receiver<bool>,
    which: Arc<AtomicU8>,
}

impl Signals {
    /// Listens for the signals from now on.
    pub fn listen() -> Signals {
        let (tx, rx) = watch::channel(false);
        let which = Arc::new(AtomicU8::new(0));
        let w = Arc::clone(&which);
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                tracing::warn!("cannot listen for signals");
                return;
            };
            let (n, name) = tokio::select! {
                _ = int.recv() => (2, "SIGINT"),
                _ = term.recv() => (15, "SIGTERM"),
                _ = hup.recv() => (1, "SIGHUP"),
            };
            tracing::info!("{name}: stopping, flushing what is held and committing");
            w.store(n, Ordering::Relaxed);
            let _ = tx.send(true);
        });
        Signals { stop: rx, which }
    }

    /// The signal that stopped the run, if one did.
    pub fn received(&self) -> Option<u8> {
        match self.which.load(Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    /// 128 + the signal number, as shells report a run a signal ended.
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(128 + self.received().unwrap_or(2))
    }
}

fn print_line(value: serde_json::Value) {
    println!("{value}");
}

fn sim_config(settings: &Settings, password: Secret) -> anyhow::Result<sim::SimConfig> {
    let mut cfg = sim::SimConfig::new(password);
    cfg.realm = settings.realm.clone();
    cfg.client_id = settings.client_id.clone();
    cfg.client_secret = settings.client_secret.clone();
    cfg.username = settings.username.clone();
    cfg.start_ms = settings.start_time.0;
    cfg.application_id = settings.application_id.parse().with_context(|| {
        format!(
            "application_id {:?} is not a number",
            settings.application_id
        )
    })?;
    Ok(cfg)
}

pub async fn sim(settings: &Settings, a: SimArgs) -> anyhow::Result<ExitCode> {
    if settings.password.is_empty() {
        bail!("set WMTOP_PASSWORD (or `password` in the config file) to the password the simulator should accept");
    }
    let mut cfg = sim_config(settings, settings.password.clone())?;
    cfg.transactions = a.transactions;
    cfg.hours = a.hours;
    cfg.seed = a.seed;
    cfg.shape = a.shape.parse().map_err(|e| anyhow!("--shape: {e}"))?;
    if !a.faults.trim().is_empty() {
        cfg.faults = a.faults.parse().map_err(|e| anyhow!("--faults: {e}"))?;
    }
    cfg.token_ttl = a.token_ttl.0;
    let listener = tokio::net::TcpListener::bind(&a.addr)
        .await
        .with_context(|| format!("cannot listen on {}", a.addr))?;
    let addr = listener.local_addr()?;
    print_line(json!({
        "sim": format!("http://{addr}"),
        "transactions": a.transactions,
        "hours": a.hours,
        "seed": a.seed,
        "shape": a.shape,
        "realm": settings.realm,
        "username": settings.username,
    }));
    let mut stop = Signals::listen().stop;
    sim::serve(listener, cfg, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await
    .context("simulator")?;
    Ok(ExitCode::SUCCESS)
}

fn random_password() -> Secret {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let a = h.finish();
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(a);
    Secret::new(format!("{a:016x}{:016x}", h2.finish()))
}

/// Starts the simulator in-process when it is the source (asked for, or no API or
/// Keycloak URL set anywhere) and returns settings pointing at it; otherwise the
/// settings as they are. A configured API is never replaced.
pub async fn with_simulator(
    settings: &Settings,
    transactions: usize,
) -> anyhow::Result<(Settings, Option<sim::SimHandle>)> {
    let Source::Simulator { asked } = settings.source() else {
        return Ok((settings.clone(), None));
    };
    let password = random_password();
    let mut cfg = sim_config(settings, password.clone())?;
    cfg.transactions = transactions;
    let handle = sim::spawn(cfg).await.context("starting the simulator")?;
    let mut s = settings.clone();
    s.api_url = Some(handle.url());
    s.keycloak_url = Some(handle.url());
    s.simulator = false;
    s.password = password;
    tracing::warn!(
        "SIMULATOR: {} the series come from the built-in simulator at {} (simulated data)",
        if asked {
            "as asked,"
        } else {
            "no API or Keycloak URL is set (flag, environment or config file), so"
        },
        handle.url()
    );
    Ok((s, Some(handle)))
}

struct Fetched {
    answer: Answer,
    fetch_ms: u64,
    attempts: u32,
    saved_to: Option<String>,
}

async fn fetch(
    settings: &Settings,
    a: &ProduceArgs,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Fetched> {
    if let Some(path) = &a.from_file {
        let started = Instant::now();
        let answer = api::read_answer(path)?;
        return Ok(Fetched {
            answer,
            fetch_ms: started.elapsed().as_millis() as u64,
            attempts: 0,
            saved_to: None,
        });
    }
    let Source::Api {
        api_url,
        keycloak_url,
    } = settings.source()
    else {
        bail!("no API to fetch from");
    };
    let http = http_client(settings)?;
    let tokens = Arc::new(TokenSource::new(http.clone(), settings, &keycloak_url));
    let client = ApiClient::new(http, tokens, settings, &api_url);
    let save = a.save.clone().unwrap_or_else(|| settings.last_fetch_path());
    let report = client.fetch(Some(&save), stop, |_, _, _| {}).await?;
    Ok(Fetched {
        answer: report.answer,
        fetch_ms: report.took.as_millis() as u64,
        attempts: report.attempts,
        saved_to: Some(save.display().to_string()),
    })
}

pub async fn produce(settings: &Settings, a: ProduceArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::listen();
    let (settings, sim) = if a.from_file.is_some() {
        (settings.clone(), None)
    } else {
        with_simulator(settings, 122).await?
    };
    let simulator = sim.as_ref().map(|s| s.url());
    let outcome = async {
        let fetched = fetch(&settings, &a, &signals.stop).await?;
        let kafka = Kafka::new(&settings);
        let published = produce::publish(&kafka, &fetched.answer).await;
        anyhow::Ok((fetched, published))
    }
    .await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    let (fetched, published) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            print_line(json!({"error": format!("{e:#}"), "simulator": simulator}));
            return Err(e);
        }
    };
    let (code, report, error) = match published {
        Ok(r) => (ExitCode::SUCCESS, r, None),
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            (ExitCode::FAILURE, *report, Some(first))
        }
        Err(e) => {
            print_line(json!({"error": e.to_string(), "simulator": simulator}));
            return Err(e.into());
        }
    };
    print_line(json!({
        "transactions": report.transactions,
        "records": report.records,
        "set_aside": report.set_aside,
        "messages_delivered": report.messages_delivered,
        "messages_failed": report.messages_failed,
        "bytes": report.bytes,
        "topic": settings.topic,
        "topic_created": report.topic_created,
        "fetch_ms": fetched.fetch_ms,
        "fetch_attempts": fetched.attempts,
        "publish_ms": report.publish_ms,
        "saved_to": fetched.saved_to,
        "simulator": simulator,
        "error": error,
    }));
    Ok(code)
}

fn parse_replay(text: &str) -> anyhow::Result<ReplayFrom> {
    if text.eq_ignore_ascii_case("beginning") {
        return Ok(ReplayFrom::Beginning);
    }
    let EpochMs(ms) = text
        .parse()
        .map_err(|e| anyhow!("--replay: {e}, or \"beginning\""))?;
    Ok(ReplayFrom::Time(ms))
}

/// The exit code for a consume run.
fn exit_for(summary: &ConsumeSummary, signals: &Signals) -> ExitCode {
    match summary.verdict {
        Verdict::Done => ExitCode::SUCCESS,
        Verdict::Interrupted => signals.exit_code(),
        Verdict::GaveUp | Verdict::Failed => ExitCode::FAILURE,
    }
}

/// Moves the group for a replay before consuming. Blocking parts on a thread.
async fn replay_first(settings: &Settings, from: ReplayFrom) -> anyhow::Result<()> {
    let kafka = Kafka::new(settings);
    let plan = tokio::task::spawn_blocking(move || {
        kafka.identify(Duration::from_secs(10))?;
        let plan = replay::plan(&kafka, from)?;
        replay::apply(&kafka, &plan)?;
        anyhow::Ok(plan)
    })
    .await??;
    let messages: i64 = plan.iter().map(replay::ReplayPart::messages).sum();
    tracing::info!(
        "replay: group {} re-reads {messages} messages: {plan:?}",
        settings.group
    );
    Ok(())
}

pub async fn consume(settings: &Settings, a: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let signals = Signals::listen();
    let ops = Ops::new(&settings.topic);
    ops::start(&settings.ops_addr, Arc::clone(&ops), signals.stop.clone()).await;
    if let Some(from) = &a.replay {
        if let Err(e) = replay_first(settings, parse_replay(from)?).await {
            print_line(json!({"verdict": "failed", "error": format!("{e:#}")}));
            return Err(e);
        }
    }
    let opts = ConsumeOptions {
        until_idle: a.until_idle.map(Duration::from_secs_f64),
        pause: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let observer = Arc::clone(&ops);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            observer.observe(&e);
        }
    });
    let (sampler_stop, sampler_rx) = watch::channel(false);
    let (samples, sampler) = lag::spawn_sampler(
        Kafka::new(settings),
        Duration::from_secs(5),
        false,
        sampler_rx,
    );
    let follower = ops::follow_lag(Arc::clone(&ops), samples);
    let startup_ms = started.elapsed().as_millis() as u64;
    let summary = consume::run(settings, opts, signals.stop.clone(), Events::new(tx)).await;
    let _ = sampler_stop.send(true);
    let _ = sampler.await;
    follower.abort();
    let mut line = serde_json::to_value(&summary)?;
    line["startup_ms"] = json!(startup_ms);
    print_line(line);
    Ok(exit_for(&summary, &signals))
}

/// A ClickHouse connection for reading, waiting for the server up to `max_wait`.
async fn connect_for_reading(settings: &Settings) -> anyhow::Result<Ch> {
    let (_keep, never) = watch::channel(false);
    let url = mask_url(&settings.clickhouse_url);
    wmtop::retry::wait_for(
        &format!("ClickHouse at {url}"),
        Some(settings.max_wait.0),
        &never,
        || Ch::connect(settings),
    )
    .await
    .map_err(|e| anyhow!("{e}"))
}

pub async fn query(settings: &Settings, a: QueryArgs) -> anyhow::Result<ExitCode> {
    let ch = connect_for_reading(settings).await?;
    let sql = match queries::preset(a.sql.trim()) {
        Some(p) => p.sql(&ch.qualified(), &a.transaction),
        None => a.sql.clone(),
    };
    let format = match a.format {
        Format::Table => "PrettyCompactMonoBlock",
        Format::Csv => "CSVWithNames",
        Format::Json => "JSONEachRow",
    };
    let started = Instant::now();
    let settings_sent = if a.allow_writes {
        &[][..]
    } else {
        ch.read_only_settings()
    };
    let out = ch.query_text_with(&sql, format, settings_sent).await?;
    print!("{out}");
    tracing::info!(took = ?started.elapsed(), "query done");
    Ok(ExitCode::SUCCESS)
}

/// `P:O`, as `--skip` takes it.
fn parse_skip(text: &str) -> anyhow::Result<(i32, i64)> {
    let (p, o) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("--skip {text:?}: expected PARTITION:OFFSET, as in 2:0"))?;
    Ok((
        p.trim()
            .parse()
            .with_context(|| format!("--skip {text:?}: the partition is not a number"))?,
        o.trim()
            .parse()
            .with_context(|| format!("--skip {text:?}: the offset is not a number"))?,
    ))
}

pub async fn dead_letters(settings: &Settings, a: DeadLettersArgs) -> anyhow::Result<ExitCode> {
    let ch = connect_for_reading(settings).await?;
    if a.redrive || a.skip.is_some() {
        let done = async {
            let loader = Loader::prepare(ch, &settings.clickhouse_user).await?;
            if let Some(skip) = &a.skip {
                let (partition, offset) = parse_skip(skip)?;
                let skipped = wmtop::redrive::skip(settings, &loader, partition, offset).await?;
                return Ok(serde_json::to_value(&skipped)?);
            }
            let report = wmtop::redrive::redrive(settings, &loader).await?;
            anyhow::Ok(serde_json::to_value(&report)?)
        }
        .await;
        return match done {
            Ok(line) => {
                print_line(line);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                print_line(json!({"error": format!("{e:#}")}));
                Err(e)
            }
        };
    }
    print!("{}", ch.dead_letters(a.limit).await?);
    Ok(ExitCode::SUCCESS)
}

pub fn schema(settings: &Settings, a: SchemaArgs) -> anyhow::Result<ExitCode> {
    let v = ServerVersion::parse(&a.server_version).ok_or_else(|| {
        anyhow!(
            "--server-version {:?}: expected MAJOR.MINOR",
            a.server_version
        )
    })?;
    println!(
        "{};",
        compat::metrics_ddl(&settings.database, &settings.table, v)
    );
    println!(
        "{};",
        compat::dead_letter_ddl(&settings.database, &settings.table)
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn run_once(settings: &Settings, a: RunArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::listen();
    let (settings, sim) = with_simulator(settings, a.transactions).await?;
    let simulator = sim.as_ref().map(|s| s.url());
    let started = Instant::now();
    let result = run_steps(&settings, &a, &signals).await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    let mut line = match result {
        Ok(line) => line,
        Err(e) => {
            print_line(
                json!({"verdict": "failed", "error": format!("{e:#}"), "simulator": simulator}),
            );
            return Err(e);
        }
    };
    line["total_ms"] = json!(started.elapsed().as_millis() as u64);
    line["simulator"] = json!(simulator);
    let ok = line["verdict"] == "done" && line["mismatched_transactions"] == 0;
    let interrupted = line["verdict"] == "interrupted";
    print_line(line);
    Ok(if interrupted {
        signals.exit_code()
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Fetch, publish, consume until idle, then compare rows per transaction (plain
/// counts) with what the API served minus what was set aside.
async fn run_steps(
    settings: &Settings,
    a: &RunArgs,
    signals: &Signals,
) -> anyhow::Result<serde_json::Value> {
    let fetched = fetch(
        settings,
        &ProduceArgs {
            from_file: None,
            save: None,
        },
        &signals.stop,
    )
    .await?;
    let kafka = Kafka::new(settings);
    let published = produce::publish(&kafka, &fetched.answer).await?;
    let consumed_at = Instant::now();
    let opts = ConsumeOptions {
        until_idle: Some(Duration::from_secs_f64(a.idle)),
        pause: None,
    };
    let summary = consume::run(settings, opts, signals.stop.clone(), Events::default()).await;
    let consume_ms = consumed_at.elapsed().as_millis() as u64;
    let mut line = serde_json::to_value(&summary)?;
    let expected = fetched.answer.accounting();
    let stored = if summary.verdict == Verdict::Done {
        connect_for_reading(settings)
            .await?
            .stored_per_transaction()
            .await?
    } else {
        Default::default()
    };
    let mismatched: Vec<_> = expected
        .iter()
        .filter(|(name, acc)| {
            let s = stored.get(*name).copied().unwrap_or_default();
            s.rows != acc.loadable() || s.distinct != acc.loadable()
        })
        .map(|(name, acc)| {
            let s = stored.get(name).copied().unwrap_or_default();
            json!({"transaction": name, "api": acc.served, "set_aside": acc.set_aside, "stored": s.rows, "distinct": s.distinct})
        })
        .collect();
    let busy_ms = summary
        .took_ms
        .saturating_sub((a.idle * 1000.0) as u64)
        .max(1);
    line["transactions"] = json!(published.transactions);
    line["records"] = json!(published.records);
    line["set_aside"] = json!(published.set_aside);
    line["messages_delivered"] = json!(published.messages_delivered);
    line["rows_stored"] = json!(stored.values().map(|s| s.rows).sum::<u64>());
    line["mismatched_transactions"] = json!(mismatched.len());
    line["mismatches"] = json!(mismatched.iter().take(10).collect::<Vec<_>>());
    line["fetch_ms"] = json!(fetched.fetch_ms);
    line["publish_ms"] = json!(published.publish_ms);
    line["consume_ms"] = json!(consume_ms);
    line["load_rows_per_sec"] = json!(summary.rows_inserted * 1000 / busy_ms);
    Ok(line)
}

pub async fn check(settings: &Settings, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = match check::reconcile(settings).await {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                let waited = e.waited_for().map(|(what, partition, offset)| {
                    json!({"what": what, "partition": partition, "offset": offset})
                });
                print_line(json!({"ok": false, "error": e.to_string(), "waited_for": waited}));
            }
            return Err(e.into());
        }
    };
    let ok = report.ok();
    let report = report.capped(check::LISTED);
    if a.json {
        let mut line = serde_json::to_value(&report)?;
        line["ok"] = json!(ok);
        print_line(line);
    } else {
        print!("{report}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints the settings in force; a secret shows only as set or not.
pub fn config(settings: &Settings, a: ConfigArgs) -> anyhow::Result<ExitCode> {
    let set = |v: bool| if v { "(set)" } else { "(not set)" };
    let source = match settings.source() {
        Source::Api { .. } => "api".to_string(),
        Source::Simulator { asked: true } => "simulator (asked for)".into(),
        Source::Simulator { asked: false } => "simulator (no API or Keycloak URL set)".into(),
    };
    let options: serde_json::Map<String, serde_json::Value> = settings
        .kafka_options
        .iter()
        .map(|(k, v)| {
            let shown = if wmtop::config::is_secret_key(k) {
                "***"
            } else {
                v
            };
            (k.to_string(), json!(shown))
        })
        .collect();
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let value = json!({
        "config_file": path(&settings.config_file),
        "source": source,
        "api_url": settings.api_url.as_deref().map(mask_url),
        "keycloak_url": settings.keycloak_url.as_deref().map(mask_url),
        "realm": settings.realm,
        "client_id": settings.client_id,
        "username": settings.username,
        "password": set(!settings.password.is_empty()),
        "client_secret": set(settings.client_secret.is_some()),
        "ca_file": path(&settings.ca_file),
        "application_id": settings.application_id,
        "start_time": settings.start_time.0,
        "end_time": settings.end_time.0,
        "index": settings.index,
        "kafka_brokers": settings.kafka_brokers,
        "kafka_security_protocol": settings.kafka_security_protocol.as_str(),
        "kafka_sasl_mechanism": settings.kafka_sasl_mechanism.map(|m| m.as_str()),
        "kafka_sasl_username": settings.kafka_sasl_username,
        "kafka_sasl_password": set(settings.kafka_sasl_password.is_some()),
        "kafka_ca_file": path(&settings.kafka_ca_file),
        "kafka_cert_file": path(&settings.kafka_cert_file),
        "kafka_key_file": path(&settings.kafka_key_file),
        "kafka_options": options,
        "topic": settings.topic,
        "create_topic": settings.create_topic,
        "partitions": settings.partitions,
        "replication_factor": settings.replication_factor,
        "group": settings.group,
        "clickhouse_url": mask_url(&settings.clickhouse_url),
        "clickhouse_user": settings.clickhouse_user,
        "clickhouse_password": set(!settings.clickhouse_password.is_empty()),
        "clickhouse_ca_file": path(&settings.clickhouse_ca_file),
        "database": settings.database,
        "table": settings.table,
        "batch_rows": settings.batch_rows,
        "batch_interval_ms": settings.batch_interval.0.as_millis() as u64,
        "request_timeout_ms": settings.request_timeout.0.as_millis() as u64,
        "max_wait_ms": settings.max_wait.0.as_millis() as u64,
        "ops_addr": settings.ops_addr,
        "data_dir": settings.data_dir.display().to_string(),
        "insecure": settings.insecure,
    });
    if a.json {
        print_line(value);
    } else if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let shown = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => "-".into(),
                other => other.to_string(),
            };
            println!("{k:<24} {shown}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
