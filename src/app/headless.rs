//! The headless commands: each runs one part of the pipeline from the library, prints one
//! JSON summary line on stdout and returns the exit code. Logs go to stderr.

use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use tokio::sync::watch;

use wmtop::api::{self, Answer, ApiClient};
use wmtop::auth::{http_client, TokenSource};
use wmtop::check;
use wmtop::config::{CommonArgs, EpochMs, Settings};
use wmtop::consume::{self, ConsumeOptions};
use wmtop::events::Events;
use wmtop::kafka::{self, ReplayFrom};
use wmtop::ops::{self, Ops};
use wmtop::produce;
use wmtop::queries;
use wmtop::retry;
use wmtop::secret::Secret;
use wmtop::sim;
use wmtop::sink::{self, ServerVersion, Sink};

use super::{
    CheckArgs, ConsumeArgs, DeadLettersArgs, Format, ProduceArgs, QueryArgs, RunArgs, SchemaArgs,
    SimArgs,
};

/// A receiver that turns true on SIGINT or SIGTERM.
fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        tracing::info!("stopping: flushing what is held and committing");
        let _ = tx.send(true);
    });
    rx
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
    let mut stop = shutdown_on_signal();
    sim::serve(listener, cfg, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await
    .context("simulator")?;
    Ok(ExitCode::SUCCESS)
}

struct Fetched {
    answer: Answer,
    fetch_ms: u64,
    attempts: u32,
    saved_to: Option<String>,
}

async fn fetch(settings: &Settings, a: &ProduceArgs) -> anyhow::Result<Fetched> {
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
    let http = http_client(settings).context("HTTP client")?;
    let tokens = Arc::new(TokenSource::new(http.clone(), settings));
    let client = ApiClient::new(http, tokens, settings);
    let save = a.save.clone().unwrap_or_else(|| settings.last_fetch_path());
    let report = client.fetch(Some(&save)).await?;
    Ok(Fetched {
        answer: report.answer,
        fetch_ms: report.took.as_millis() as u64,
        attempts: report.attempts,
        saved_to: Some(save.display().to_string()),
    })
}

pub async fn produce(settings: &Settings, a: ProduceArgs) -> anyhow::Result<ExitCode> {
    let fetched = fetch(settings, &a).await?;
    let (code, report, error) = match produce::publish(settings, &fetched.answer).await {
        Ok(r) => (ExitCode::SUCCESS, r, None),
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            (ExitCode::FAILURE, *report, Some(first))
        }
        Err(e) => return Err(e.into()),
    };
    print_line(json!({
        "transactions": report.transactions,
        "records": report.records,
        "messages_delivered": report.messages_delivered,
        "messages_failed": report.messages_failed,
        "bytes": report.bytes,
        "topic": settings.topic,
        "topic_created": report.topic_created,
        "fetch_ms": fetched.fetch_ms,
        "fetch_attempts": fetched.attempts,
        "publish_ms": report.publish_ms,
        "saved_to": fetched.saved_to,
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

pub async fn consume(settings: &Settings, a: ConsumeArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let stop = shutdown_on_signal();
    let ops = Ops::new(&settings.topic);
    ops::start(&settings.ops_addr, Arc::clone(&ops), stop.clone()).await;
    // ClickHouse may not be up yet: wait for it rather than fail.
    let what = format!("ClickHouse at {}", settings.clickhouse_url);
    let Some(sink) = retry::until_ready(&what, &mut stop.clone(), || Sink::connect(settings)).await
    else {
        return Ok(ExitCode::SUCCESS);
    };
    ops.connected("clickhouse");
    if let Some(from) = &a.replay {
        let from = parse_replay(from)?;
        let s = settings.clone();
        let plan = tokio::task::spawn_blocking(move || kafka::reset_group(&s, from)).await??;
        let messages: i64 = plan.iter().map(kafka::ReplayPart::messages).sum();
        tracing::info!(
            "replay: group {} re-reads {messages} messages: {plan:?}",
            settings.group
        );
    }
    let opts = ConsumeOptions {
        until_idle: a.until_idle.map(Duration::from_secs_f64),
        max_insert_attempts: None,
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
    let sampler = ops::spawn_lag_sampler(
        settings.clone(),
        Arc::clone(&ops),
        Duration::from_secs(5),
        sampler_rx,
    );
    let startup_ms = started.elapsed().as_millis() as u64;
    let result = consume::run(settings, sink.clone(), opts, stop, Events::new(tx)).await;
    let _ = sampler_stop.send(true);
    let _ = sampler.await;
    let summary = result?;
    let mut line = serde_json::to_value(&summary)?;
    line["clickhouse_version"] = json!(sink.version_text);
    line["table"] = json!(sink.qualified());
    line["startup_ms"] = json!(startup_ms);
    print_line(line);
    Ok(ExitCode::SUCCESS)
}

pub async fn query(settings: &Settings, a: QueryArgs) -> anyhow::Result<ExitCode> {
    let sink = Sink::connect(settings).await?;
    let sql = match queries::preset(a.sql.trim()) {
        Some(p) => p.sql(&sink.qualified(), &a.transaction),
        None => a.sql.clone(),
    };
    let format = match a.format {
        Format::Table => "PrettyCompactMonoBlock",
        Format::Csv => "CSVWithNames",
        Format::Json => "JSONEachRow",
    };
    let started = Instant::now();
    let out = sink.query_text(&sql, format, !a.allow_writes).await?;
    print!("{out}");
    tracing::info!(took = ?started.elapsed(), "query done");
    Ok(ExitCode::SUCCESS)
}

pub async fn dead_letters(settings: &Settings, a: DeadLettersArgs) -> anyhow::Result<ExitCode> {
    let sink = Sink::connect(settings).await?;
    if a.redrive {
        let report = wmtop::redrive::redrive(settings, &sink).await?;
        print_line(serde_json::to_value(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    print!("{}", sink.dead_letters(a.limit).await?);
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
        sink::metrics_ddl(&settings.database, &settings.table, v)
    );
    println!(
        "{};",
        sink::dead_letter_ddl(&settings.database, &settings.table)
    );
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

/// True when something accepts connections at the URL's host and port.
async fn answers(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let Some(addrs) = u.socket_addrs(|| None).ok() else {
        return false;
    };
    let Some(addr): Option<SocketAddr> = addrs.into_iter().next() else {
        return false;
    };
    matches!(
        tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(addr)
        )
        .await,
        Ok(Ok(_))
    )
}

/// Starts the simulator in-process when the API and Keycloak are the built-in defaults
/// and nothing answers there; returns the settings pointing at it.
pub async fn with_simulator(
    settings: &Settings,
    common: &CommonArgs,
    transactions: usize,
) -> anyhow::Result<(Settings, Option<sim::SimHandle>)> {
    let defaults = Settings::resolve_with(&CommonArgs::default(), &|_| None)?;
    let configured = common.api_url.is_some()
        || settings.api_url != defaults.api_url
        || settings.keycloak_url != defaults.keycloak_url;
    if configured || answers(&settings.api_url).await {
        return Ok((settings.clone(), None));
    }
    let password = random_password();
    let mut cfg = sim_config(settings, password.clone())?;
    cfg.transactions = transactions;
    let handle = sim::spawn(cfg).await.context("starting the simulator")?;
    let mut s = settings.clone();
    s.api_url = handle.url();
    s.keycloak_url = handle.url();
    s.password = password;
    tracing::info!("no API configured: simulator started at {}", handle.url());
    Ok((s, Some(handle)))
}

pub async fn run_once(
    settings: &Settings,
    common: &CommonArgs,
    a: RunArgs,
) -> anyhow::Result<ExitCode> {
    let (settings, sim) = with_simulator(settings, common, a.transactions).await?;
    let sink = Sink::connect(&settings).await?;
    let started = Instant::now();
    let fetched = fetch(
        &settings,
        &ProduceArgs {
            from_file: None,
            save: None,
        },
    )
    .await?;
    let published = produce::publish(&settings, &fetched.answer).await?;
    let consumed_at = Instant::now();
    let opts = ConsumeOptions {
        until_idle: Some(Duration::from_secs_f64(a.idle)),
        max_insert_attempts: None,
        pause: None,
    };
    let summary = consume::run(
        &settings,
        sink.clone(),
        opts,
        shutdown_on_signal(),
        Events::default(),
    )
    .await?;
    let consume_ms = consumed_at.elapsed().as_millis() as u64;
    let in_ch = sink.rows_per_transaction().await?;
    let expected = fetched.answer.records_per_transaction();
    let mismatched: Vec<_> = expected
        .iter()
        .filter(|(name, n)| in_ch.get(*name) != Some(*n))
        .map(|(name, n)| json!({"transaction": name, "api": n, "clickhouse": in_ch.get(name)}))
        .collect();
    let busy_ms = summary
        .took_ms
        .saturating_sub((a.idle * 1000.0) as u64)
        .max(1);
    print_line(json!({
        "transactions": published.transactions,
        "records": published.records,
        "messages_delivered": published.messages_delivered,
        "messages": summary.messages,
        "rows_inserted": summary.rows_inserted,
        "batches": summary.batches,
        "bad_messages": summary.bad_messages,
        "bad_records": summary.bad_records,
        "rows_in_clickhouse": in_ch.values().sum::<u64>(),
        "mismatched_transactions": mismatched.len(),
        "mismatches": mismatched.iter().take(10).collect::<Vec<_>>(),
        "fetch_ms": fetched.fetch_ms,
        "publish_ms": published.publish_ms,
        "consume_ms": consume_ms,
        "load_rows_per_sec": summary.rows_inserted * 1000 / busy_ms,
        "total_ms": started.elapsed().as_millis() as u64,
        "clickhouse_version": sink.version_text,
        "simulator": sim.as_ref().map(|s| s.url()),
    }));
    if let Some(s) = sim {
        s.shutdown().await;
    }
    Ok(if mismatched.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub async fn check(settings: &Settings, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = check::reconcile(settings).await?;
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
