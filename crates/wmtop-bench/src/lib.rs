//! wmtop's benchmarks (`wmtop bench`): runs every benchmark against the local stack in one
//! go and prints the figures next to their targets, with wmtop's load times as ratios to
//! the servers' own ceiling measured in the same run. Medians of `--runs` runs unless said
//! otherwise. The measurements themselves are in [`measure`]; this file runs and reports.

mod inside;
pub mod measure;
mod peer;
mod scale;
mod screen;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use measure::median;
use serde_json::json;
use wmtop_core::clickhouse::table::RowPlan;
use wmtop_core::clickhouse::{Ch, Loader};
use wmtop_core::config::Settings;
use wmtop_core::kafka::produce;
use wmtop_core::kafka::{topic, Kafka};
use wmtop_core::source::api::Answer;

use wmtop_tui::frames;

/// What `wmtop bench` measures, and how often.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Runs of each measurement (the median is printed; 10x loads run at most twice).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The larger dataset, as a multiple of the default one.
    #[arg(long, default_value_t = 10)]
    pub scale: usize,
    /// Only these parts: flatten, produce, ceiling, load, peer, scale, screen
    /// (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Rows of other applications and days the scale part pre-fills its tables with, one
    /// size after another (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64, 20_000_000])]
    pub scale_rows: Vec<u64>,
    /// Seconds over which the idle monitor's CPU is measured.
    #[arg(long, default_value_t = 30)]
    pub idle_secs: u64,
    /// The monitor measured idle: this wmtop unless given (another build's binary, to
    /// compare before and after a change).
    #[arg(long, value_name = "PATH")]
    pub monitor_exe: Option<PathBuf>,
    /// The Python that runs the peer loader (with confluent-kafka and clickhouse-connect
    /// 0.7 installed; scripts/bench makes one).
    #[arg(long, env = "WMTOP_BENCH_PEER_PYTHON", default_value = "python3")]
    pub peer_python: PathBuf,
    /// Apache Kafka's jars, for its producer performance tool (scripts/bench points this
    /// at the stack's cache).
    #[arg(
        long,
        env = "WMTOP_BENCH_KAFKA_LIBS",
        default_value = ".stack/cache/kafka-4.1.1/libs"
    )]
    pub kafka_libs: PathBuf,
    /// ClickHouse's native port, for clickhouse-client.
    #[arg(long, env = "WMTOP_STACK_CH_TCP_PORT", default_value_t = 9000)]
    pub ch_tcp_port: u16,
    /// Also write the figures to this file as JSON.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
}

/// One printed figure.
struct Figure {
    what: String,
    value: String,
    target: String,
    /// None: no target to meet.
    met: Option<bool>,
}

pub(crate) struct Report {
    figures: Vec<Figure>,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    pub(crate) fn add(
        &mut self,
        what: impl Into<String>,
        value: String,
        target: &str,
        met: Option<bool>,
    ) {
        let what = what.into();
        println!(
            "  {what:<44} {value:>28}  {target:<22} {}",
            match met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "",
            }
        );
        self.figures.push(Figure {
            what,
            value,
            target: target.to_string(),
            met,
        });
    }

    pub(crate) fn record(&mut self, key: &str, value: serde_json::Value) {
        self.json.insert(key.to_string(), value);
    }
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn thousands(n: f64) -> String {
    let s = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// A name no earlier run used, for topics, tables and groups.
pub(crate) fn fresh(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "bench_{tag}_{:x}",
        (nanos as u64) ^ u64::from(std::process::id())
    )
}

pub(crate) fn with(settings: &Settings, topic: &str, table: &str) -> Settings {
    let mut s = settings.clone();
    s.topic = topic.to_string();
    s.table = table.to_string();
    s.group = format!("{table}_group");
    s
}

pub async fn run(settings: &Settings, a: BenchArgs) -> anyhow::Result<ExitCode> {
    let runs = a.runs.max(1);
    let only = |part: &str| a.only.is_empty() || a.only.iter().any(|o| o == part);
    let mut r = Report {
        figures: Vec::new(),
        json: serde_json::Map::new(),
    };
    let sink = Ch::connect(settings)
        .await
        .context("ClickHouse must be up (scripts/stack up)")?;
    let plan = measure::own_plan(sink.version);
    println!(
        "wmtop bench: {} ({} cores), ClickHouse {}, Kafka at {}; medians of {runs} runs",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        sink.version_text,
        settings.kafka_brokers
    );
    r.record("cpu", json!(cpu_model()));
    r.record("clickhouse_version", json!(sink.version_text));
    r.record("runs", json!(runs));
    let one = measure::dataset(1)?;
    let ten = if only("load") || only("ceiling") || only("peer") {
        Some(measure::dataset(a.scale)?)
    } else {
        None
    };
    if only("flatten") {
        flatten(&mut r, &one, &plan, runs);
    }
    let mut tables: Vec<String> = Vec::new();
    let result = async {
        if only("produce") {
            produce_part(&mut r, settings, &a, &one, runs).await?;
        }
        if only("load") || only("ceiling") || only("peer") {
            let waited = inside::after_recent_drops(&sink).await;
            if waited > 0 {
                println!(
                    "  waited {waited} s: tables were dropped just before, and creating files costs the server more for half a minute after"
                );
            }
            let mut prefilled: Vec<(usize, String, &Answer)> = Vec::new();
            for (scale, answer) in
                std::iter::once((1, &one)).chain(ten.iter().map(|t| (a.scale, t)))
            {
                prefilled.push(prefill_part(&mut r, settings, scale, answer).await?);
            }
            if only("load") || only("ceiling") {
                let ceiling = ceiling_part(
                    &mut r,
                    settings,
                    &a,
                    &plan,
                    &prefilled,
                    &mut tables,
                    only("load"),
                )
                .await?;
                if only("load") {
                    load_part(&mut r, settings, &ceiling).await;
                }
            }
            if only("peer") {
                peer::run(&mut r, settings, &a, runs, &prefilled[0], &mut tables).await?;
            }
        }
        if only("scale") {
            scale::run(settings, &a.scale_rows, runs, &mut r, &mut tables).await?;
        }
        anyhow::Ok(())
    }
    .await;
    cleanup(&sink, &tables).await;
    result?;
    if only("screen") {
        let mut screen_tables = Vec::new();
        let screened = screen_part(&mut r, settings, &a, &mut screen_tables).await;
        cleanup(&sink, &screen_tables).await;
        screened?;
    }
    r.finish(a.json.as_deref())
}

/// Flatten + encode with no I/O: on one thread, then on every core the way the consumer
/// could spread messages over one lane per core (the consumer itself flattens on its own
/// task for now).
fn flatten(r: &mut Report, one: &Answer, plan: &RowPlan, runs: usize) {
    println!("flatten + encode (no I/O):");
    let json_mb = one.bytes as f64 / 1e6;
    let mut one_thread_10x = 0.0;
    for (passes, n) in [(1usize, runs), (10, runs), (100, 1)] {
        let took = median(
            (0..n)
                .map(|_| measure::flatten_encode(one, passes, plan).took)
                .collect(),
        );
        let rows = (one.records() * passes) as f64;
        let rate = rows / took.as_secs_f64().max(1e-9);
        if passes == 10 {
            one_thread_10x = rate;
        }
        r.add(
            format!("{passes}x, one thread: {} rows", thousands(rows)),
            format!(
                "{} rows/s, {:.0} MB/s of JSON",
                thousands(rate),
                json_mb * passes as f64 / took.as_secs_f64().max(1e-9)
            ),
            ">= 500,000 rows/s",
            Some(rate >= 500_000.0),
        );
        r.record(
            &format!("flatten_{passes}x_rows_per_sec"),
            json!(rate.round()),
        );
    }
    let lanes = std::thread::available_parallelism().map_or(1, |n| n.get());
    let took = median(
        (0..runs)
            .map(|_| measure::flatten_lanes(one, 10, plan, lanes).took)
            .collect(),
    );
    let rate = (one.records() * 10) as f64 / took.as_secs_f64().max(1e-9);
    let ratio = rate / one_thread_10x.max(1.0);
    r.add(
        format!("10x, {lanes} lanes (messages spread over cores, taken in order)"),
        format!("{} rows/s, {ratio:.2}x one thread", thousands(rate)),
        ">= 1.8x one thread",
        (lanes >= 2).then_some(ratio >= 1.8),
    );
    r.record("flatten_lanes", json!(lanes));
    r.record("flatten_10x_lanes_rows_per_sec", json!(rate.round()));
}

/// Publishing a saved fetch, every message acknowledged.
async fn produce_part(
    r: &mut Report,
    settings: &Settings,
    a: &BenchArgs,
    one: &Answer,
    runs: usize,
) -> anyhow::Result<()> {
    println!("produce (a saved fetch to every message acknowledged), beside Kafka's own tool:");
    // Every run appends the dataset to one topic, as a reload does; the tool to another.
    let s = with(settings, "wmtop_bench_produce", "unused");
    let kafka = Kafka::new(&s);
    topic::ensure(&kafka).await?;
    let tool_topic = "wmtop_bench_produce_tool";
    topic::ensure(&Kafka::new(&with(settings, tool_topic, "unused"))).await?;
    let (mut times, mut tool_times) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let rep = produce::publish(&kafka, one).await?;
        times.push(started.elapsed());
        if rep.messages_delivered != one.transactions.len() {
            bail!(
                "produce delivered {} of {}",
                rep.messages_delivered,
                one.transactions.len()
            );
        }
        let (s, answer, libs) = (settings.clone(), one.clone(), a.kafka_libs.clone());
        tool_times.push(
            tokio::task::spawn_blocking(move || {
                measure::producer_tool(&s, tool_topic, &answer, &libs)
            })
            .await??,
        );
    }
    let (t, tool) = (median(times), median(tool_times));
    r.add(
        format!(
            "1x: {} messages, {:.1} MB",
            one.transactions.len(),
            one.bytes as f64 / 1e6
        ),
        format!("{:.0} ms", ms(t)),
        "<= 500 ms",
        Some(t <= Duration::from_millis(500)),
    );
    let ratio = t.as_secs_f64() / tool.as_secs_f64().max(1e-9);
    r.add(
        "1x: Kafka's producer performance tool, same payloads and acks".to_string(),
        format!("{:.0} ms; wmtop {ratio:.2}x that", ms(tool)),
        "<= 1.3x",
        Some(ratio <= 1.3),
    );
    r.record("produce_1x_ms", json!(ms(t).round()));
    r.record("produce_tool_1x_ms", json!(ms(tool).round()));
    r.record(
        "produce_ceiling_ratio",
        json!((ratio * 100.0).round() / 100.0),
    );
    Ok(())
}

/// The topic holding the `scale`x dataset, filled on the first run.
async fn prefill_part<'a>(
    r: &mut Report,
    settings: &Settings,
    scale: usize,
    answer: &'a Answer,
) -> anyhow::Result<(usize, String, &'a Answer)> {
    let (topic, filled) = prefill(settings, scale, answer).await?;
    if let Some(t) = filled {
        r.add(
            format!(
                "{scale}x: filled {topic} ({} messages, {:.0} MB)",
                answer.transactions.len(),
                answer.bytes as f64 / 1e6
            ),
            format!("{:.0} ms", ms(t)),
            "",
            None,
        );
    }
    Ok((scale, topic, answer))
}

/// One dataset's ceiling, and wmtop's loads of it when they were asked for: each load
/// runs right after one of the ceiling's inserts, so that both meet the server in the
/// same state (its cost per file swings with what it deleted just before).
struct Measured {
    scale: usize,
    /// The rows both inserted.
    rows: u64,
    read: Duration,
    insert: Duration,
    loads: Vec<Loaded>,
    load_tables: Vec<String>,
}

/// The servers' own ceiling: a bare read of each topic and clickhouse-client inserting
/// the same rows, each insert followed by one of wmtop's loads when `loads`.
async fn ceiling_part(
    r: &mut Report,
    settings: &Settings,
    a: &BenchArgs,
    plan: &RowPlan,
    prefilled: &[(usize, String, &Answer)],
    tables: &mut Vec<String>,
    loads: bool,
) -> anyhow::Result<Vec<Measured>> {
    let runs = a.runs.max(1);
    let mut ceiling: Vec<Measured> = Vec::new();
    println!(
        "the servers' ceiling (same rows, same messages){}:",
        if loads {
            "; each insert followed by one of wmtop's loads, reported below"
        } else {
            ""
        }
    );
    for (scale, topic, answer) in prefilled {
        let n = if *scale == 1 { runs } else { runs.min(2) };
        let read = bare_reads(settings, topic, answer, n).await?;
        let (encoded, rows) = measure::encode_all(answer, plan);
        let file = std::env::temp_dir().join(format!("{}.rowbinary", fresh("rows")));
        std::fs::write(&file, &encoded)?;
        drop(encoded);
        let mut inserts = Vec::new();
        let mut wmtop = Vec::new();
        let (mut ceil_tables, mut load_tables) = (Vec::new(), Vec::new());
        let measured = async {
            for _ in 0..n {
                let table = fresh("ceil");
                let s = with(settings, topic, &table);
                let loader = Loader::prepare(Ch::connect(&s).await?, &s).await?;
                ceil_tables.push(table.clone());
                let took = measure::client_insert(
                    settings,
                    a.ch_tcp_port,
                    &loader.plan.insert_sql,
                    &file,
                )?;
                let stored = loader.ch.stored_rows().await?;
                if stored != rows {
                    bail!("clickhouse-client stored {stored} of {rows} rows");
                }
                inserts.push(took);
                if loads {
                    wmtop.push(load_fresh(settings, topic, rows, &mut load_tables)?);
                }
            }
            anyhow::Ok(())
        }
        .await;
        let _ = std::fs::remove_file(&file);
        tables.extend(ceil_tables.iter().chain(&load_tables).cloned());
        measured?;
        let insert = median(inserts);
        r.add(
            format!(
                "{scale}x: bare read of {} messages",
                answer.transactions.len()
            ),
            format!("{:.0} ms", ms(read)),
            "",
            None,
        );
        r.add(
            format!(
                "{scale}x: clickhouse-client insert of {} rows",
                thousands(rows as f64)
            ),
            format!(
                "{:.0} ms, {} rows/s",
                ms(insert),
                thousands(rows as f64 / insert.as_secs_f64())
            ),
            "",
            None,
        );
        let whose = ("clickhouse-client", "client_insert");
        inside_inserts(r, settings, *scale, whose, &ceil_tables, n).await;
        r.record(&format!("bare_read_{scale}x_ms"), json!(ms(read).round()));
        r.record(
            &format!("client_insert_{scale}x_ms"),
            json!(ms(insert).round()),
        );
        ceiling.push(Measured {
            scale: *scale,
            rows,
            read,
            insert,
            loads: wmtop,
            load_tables,
        });
    }
    Ok(ceiling)
}

/// The median of `n` bare reads of `topic`, which must each read every message.
async fn bare_reads(
    settings: &Settings,
    topic: &str,
    answer: &Answer,
    n: usize,
) -> anyhow::Result<Duration> {
    let s = with(settings, topic, "unused");
    let mut reads = Vec::new();
    for _ in 0..n {
        let s = s.clone();
        let read = tokio::task::spawn_blocking(move || measure::bare_read(&s)).await??;
        if read.messages != answer.transactions.len() as u64 {
            bail!(
                "bare read got {} of {} messages",
                read.messages,
                answer.transactions.len()
            );
        }
        reads.push(read.took);
    }
    Ok(median(reads))
}

/// Loads end to end, from a pre-filled topic to the last insert acknowledged and
/// committed (run between the ceiling's inserts), next to the ceiling.
async fn load_part(r: &mut Report, settings: &Settings, ceiling: &[Measured]) {
    println!("load, end to end (pre-filled topic to the last insert acknowledged and committed):");
    for m in ceiling {
        let (scale, rows) = (m.scale, m.rows);
        let n = m.loads.len();
        let wall = median(m.loads.iter().map(|l| l.wall).collect());
        let peak_kb = m.loads.iter().map(|l| l.peak_kb).max().unwrap_or(0);
        let rate = rows as f64 / wall.as_secs_f64();
        let (target, met) = if scale == 1 {
            ("<= 1 s", wall <= Duration::from_secs(1))
        } else {
            (">= 100,000 rows/s", rate >= 100_000.0)
        };
        r.add(
            format!("{scale}x: {} rows", thousands(rows as f64)),
            format!("{:.0} ms, {} rows/s", ms(wall), thousands(rate)),
            target,
            Some(met),
        );
        inside_inserts(r, settings, scale, ("the load", "load"), &m.load_tables, n).await;
        r.record(&format!("load_{scale}x_ms"), json!(ms(wall).round()));
        r.record(&format!("load_{scale}x_rows_per_sec"), json!(rate.round()));
        let ratio = wall.as_secs_f64() / m.read.max(m.insert).as_secs_f64();
        r.add(
            format!("{scale}x: load / ceiling (slower of read, insert)"),
            format!(
                "{ratio:.2}x (read {:.2}x, insert {:.2}x)",
                wall.as_secs_f64() / m.read.as_secs_f64(),
                wall.as_secs_f64() / m.insert.as_secs_f64()
            ),
            if scale == 1 { "<= 1.2x" } else { "<= 1.3x" },
            Some(ratio <= if scale == 1 { 1.2 } else { 1.3 }),
        );
        r.record(
            &format!("load_{scale}x_ceiling_ratio"),
            json!((ratio * 100.0).round() / 100.0),
        );
        if scale != 1 {
            let mb = peak_kb as f64 / 1024.0;
            r.add(
                format!("{scale}x: consumer peak RSS"),
                format!("{mb:.0} MB"),
                "<= 150 MB",
                Some(mb <= 150.0),
            );
            r.record(&format!("load_{scale}x_peak_rss_mb"), json!(mb.round()));
        }
    }
}

/// The monitor: frame time, and its idle cost before and after a load.
async fn screen_part(
    r: &mut Report,
    settings: &Settings,
    a: &BenchArgs,
    tables: &mut Vec<String>,
) -> anyhow::Result<()> {
    println!("the monitor:");
    let times = tokio::task::spawn_blocking(|| frames::draw_times(200, 50, 2_000)).await??;
    let mut sorted = times.clone();
    sorted.sort_unstable();
    let p99 = sorted[sorted.len() * 99 / 100];
    let med = median(times);
    r.add(
        "frame draw at 200x50, every pane full (2,000 frames)",
        format!("{:.3} ms (p99 {:.3} ms)", ms(med), ms(p99)),
        "<= 1 ms",
        Some(med <= Duration::from_millis(1)),
    );
    r.record("frame_draw_ms", json!((ms(med) * 1000.0).round() / 1000.0));
    let exe = match &a.monitor_exe {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    // The monitor makes a table of this name: dropped at the end like the others.
    let table = fresh("screen");
    tables.push(table.clone());
    let idle = screen::idle_screen(settings, a.idle_secs, &exe, &table)?;
    for (when, s) in [
        ("before a load", &idle.before),
        ("after a load", &idle.after),
    ] {
        r.add(
            format!("idle {when}, screen open at 200x50, over {} s", a.idle_secs),
            format!("{:.2}% of a core", s.cpu_percent),
            "<= 0.3%",
            Some(s.cpu_percent <= 0.3),
        );
        let mb = s.rss_kb as f64 / 1024.0;
        r.add(
            format!("idle RSS {when}"),
            format!("{mb:.1} MB"),
            "<= 25 MB",
            Some(mb <= 25.0),
        );
    }
    r.add(
        "the load in between (r to \"load done\")",
        format!("{:.1} s", idle.load.as_secs_f64()),
        "",
        None,
    );
    r.record("idle_cpu_percent", json!(idle.after.cpu_percent));
    r.record(
        "idle_rss_mb",
        json!((idle.after.rss_kb as f64 / 1024.0 * 10.0).round() / 10.0),
    );
    r.record(
        "idle_before_load_cpu_percent",
        json!(idle.before.cpu_percent),
    );
    r.record(
        "idle_before_load_rss_mb",
        json!((idle.before.rss_kb as f64 / 1024.0 * 10.0).round() / 10.0),
    );
    Ok(())
}

impl Report {
    /// Prints how many targets were met and which were missed; writes the JSON.
    fn finish(self, json: Option<&Path>) -> anyhow::Result<ExitCode> {
        let r = self;
        let missed: Vec<&Figure> = r.figures.iter().filter(|f| f.met == Some(false)).collect();
        println!(
            "{} of {} targets met",
            r.figures.iter().filter(|f| f.met == Some(true)).count(),
            r.figures.iter().filter(|f| f.met.is_some()).count()
        );
        for f in &missed {
            println!("  missed: {} = {} (target {})", f.what, f.value, f.target);
        }
        if let Some(path) = json {
            std::fs::write(path, serde_json::Value::Object(r.json).to_string())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The topic holding the `scale`x dataset for the load and ceiling runs: filled once and
/// reused by later runs while it holds exactly the dataset. Returns the time filling took,
/// if it had to be filled.
async fn prefill(
    settings: &Settings,
    scale: usize,
    answer: &Answer,
) -> anyhow::Result<(String, Option<Duration>)> {
    let want = answer.transactions.len() as i64;
    let mut topic = format!("wmtop_bench_{scale}x");
    let mut attempt = 0;
    loop {
        let s = with(settings, &topic, "unused");
        let kafka = Kafka::new(&s);
        topic::ensure(&kafka).await?;
        // A topic just made is in the brokers' metadata a moment later.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let k = kafka.clone();
            let found =
                tokio::task::spawn_blocking(move || topic::partitions(&k, Duration::from_secs(10)))
                    .await??;
            if found.is_some() {
                break;
            }
            if Instant::now() > deadline {
                bail!("topic {topic} was made but is not in the brokers' metadata after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let s2 = s.clone();
        let have = tokio::task::spawn_blocking(move || measure::topic_messages(&s2)).await??;
        if have == want {
            return Ok((topic, None));
        }
        if have == 0 {
            let started = Instant::now();
            let rep = produce::publish(&kafka, answer).await?;
            if rep.messages_delivered as i64 != want {
                bail!(
                    "filling {topic}: {} of {want} delivered",
                    rep.messages_delivered
                );
            }
            return Ok((topic, Some(started.elapsed())));
        }
        // Something else is on it (an interrupted fill): use the next name.
        attempt += 1;
        topic = format!("wmtop_bench_{scale}x_{attempt}");
    }
}

/// Prints what ClickHouse spent inside the inserts into `tables` over `runs` runs, per
/// run (from its own log; unknown, with the reason, when the log cannot be read), as
/// `whose`: its words on screen and its tag in the JSON keys.
async fn inside_inserts(
    r: &mut Report,
    settings: &Settings,
    scale: usize,
    (who, tag): (&str, &str),
    tables: &[String],
    runs: usize,
) {
    let found = match Ch::connect(settings).await {
        Ok(ch) => inside::inserts(&ch, tables).await,
        Err(e) => Err(e.into()),
    };
    let key = format!("{scale}x");
    let what = format!("{key}: {who}, inside ClickHouse per run");
    match found {
        Ok(i) => {
            r.add(what, i.per_run(runs), "", None);
            let n = runs.max(1) as u64;
            r.record(&format!("{tag}_{key}_inserts"), json!(i.inserts / n));
            r.record(&format!("{tag}_{key}_parts"), json!(i.parts / n));
            r.record(&format!("{tag}_{key}_files"), json!(i.files / n));
            r.record(&format!("{tag}_{key}_server_ms"), json!(i.server_ms / n));
            r.record(
                &format!("{tag}_{key}_kernel_ms"),
                json!(i.kernel_us / 1000 / n),
            );
        }
        Err(e) => r.add(what, format!("unknown: {e:#}"), "", None),
    }
}

/// One load: `wmtop consume --until-idle` as a child process on a fresh table and group.
/// Its wall time is start-up plus consumer start to last commit (as it reports them: the
/// idle second it waits before stopping is not counted); CPU and peak RSS are the whole
/// process's.
fn load_once(settings: &Settings, topic: &str, table: &str) -> anyhow::Result<Loaded> {
    let exe = std::env::current_exe()?;
    let run = measure::run_child(
        Command::new(exe)
            .args(["consume", "--until-idle", "1"])
            .env("WMTOP_TOPIC", topic)
            .env("WMTOP_TABLE", table)
            .env("WMTOP_GROUP", format!("{table}_group"))
            .env("WMTOP_OPS_ADDR", "off")
            .env("WMTOP_KAFKA_BROKERS", &settings.kafka_brokers)
            .env("WMTOP_CLICKHOUSE_URL", &settings.clickhouse_url)
            .env("WMTOP_DATABASE", &settings.database),
    )?;
    if !run.success {
        bail!("wmtop consume failed");
    }
    let line: serde_json::Value = serde_json::from_slice(&run.stdout)?;
    let field = |k: &str| line[k].as_u64().unwrap_or(0);
    Ok(Loaded {
        wall: Duration::from_millis(field("startup_ms") + field("loaded_ms")),
        cpu: run.cpu,
        peak_kb: run.peak_kb,
        rows: field("rows_inserted"),
    })
}

/// One load into a fresh table (kept in `tables` to be dropped at the end), which must
/// insert `rows` rows.
pub(crate) fn load_fresh(
    settings: &Settings,
    topic: &str,
    rows: u64,
    tables: &mut Vec<String>,
) -> anyhow::Result<Loaded> {
    let table = fresh("load");
    tables.push(table.clone());
    let l = load_once(settings, topic, &table)?;
    if l.rows != rows {
        bail!("the load of {topic} inserted {} of {rows} rows", l.rows);
    }
    Ok(l)
}

/// What one load took.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Loaded {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) peak_kb: u64,
    pub(crate) rows: u64,
}

pub(crate) fn status_kb(path: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// Drops the tables the run made (its topics stay: see [`prefill`]).
async fn cleanup(sink: &Ch, tables: &[String]) {
    for t in tables {
        for name in [t.clone(), format!("{t}_dead_letters")] {
            if let Err(e) = sink
                .execute(&format!("DROP TABLE IF EXISTS {}.{name}", sink.database))
                .await
            {
                tracing::warn!("bench: could not drop {name}: {e}");
            }
        }
    }
}
