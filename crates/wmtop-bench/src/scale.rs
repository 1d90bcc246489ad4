//! The scale benchmark (`wmtop bench --only scale`): what wmtop's reads and settling cost
//! on a table that already holds millions of rows of other applications and other days.
//! For each size, one table is made by wmtop (partitioned by day) and one as tables were
//! made before (by month) and both are pre-filled alike; then the default dataset loads,
//! reloads with a tenth of its hours revised, and the monitor's periodic read and `check`
//! run. Each figure is a time and the rows the server read for it (`system.query_log`,
//! and `system.part_log` for merges), next to the statements wmtop ran before on the
//! month-partitioned table.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Deserialize;
use serde_json::json;
use wmtop_core::clickhouse::client::lenient_u64;
use wmtop_core::clickhouse::compat::{metrics_table_ddl, Placement, METRICS_PARTITION_KEY};
use wmtop_core::clickhouse::{Ch, Loader};
use wmtop_core::config::secret::Secret;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{produce, topic, Kafka};
use wmtop_core::load::{self, ConsumeOptions, ConsumeSummary, Verdict};
use wmtop_core::source::api::{split_answer, Answer};
use wmtop_core::tools::check;
use wmtop_sim::{full_answer, SimConfig};

use super::{fresh, median, ms, thousands, Report};

/// Added to a revised hour's total.
const REVISED: i64 = 1_000_000;
/// Days the other applications' rows span, ending a month after the dataset.
const OTHER_DAYS: i64 = 730;
/// Rows per pre-fill statement.
const FILL_CHUNK: u64 = 2_000_000;

/// The server's log of one kind of statement over a stretch of the run.
#[derive(Debug, Default, Deserialize)]
struct Logged {
    #[serde(deserialize_with = "lenient_u64")]
    queries: u64,
    /// Rows read by the statement that read the most.
    #[serde(deserialize_with = "lenient_u64")]
    most_rows: u64,
    #[serde(deserialize_with = "lenient_u64")]
    rows: u64,
}

/// Merges the server made over a stretch of the run.
#[derive(Debug, Default, Deserialize)]
struct Merged {
    #[serde(deserialize_with = "lenient_u64")]
    merges: u64,
    /// Rows written by the merges (each rewrites every row of the parts it merges).
    #[serde(deserialize_with = "lenient_u64")]
    rows: u64,
}

/// One size's tables and the settings that load into the day-partitioned one.
struct Tables {
    ch: Ch,
    s: Settings,
    old: String,
}

impl Tables {
    fn new_table(&self) -> String {
        self.ch.qualified()
    }

    fn old_table(&self) -> String {
        format!("{}.{}", self.s.database, self.old)
    }
}

/// Runs the scale benchmark at each of `sizes` rows of other data; `made` collects the
/// tables to drop.
pub(super) async fn run(
    settings: &Settings,
    sizes: &[u64],
    runs: usize,
    r: &mut Report,
    made: &mut Vec<String>,
) -> anyhow::Result<()> {
    println!("scale (a table holding other applications and days; time and rows the server read):");
    let (body, revised) = datasets()?;
    let mut at: Vec<(u64, Duration, Duration)> = Vec::new();
    for &size in sizes {
        let t = tables(settings, size, made).await?;
        let filled = Instant::now();
        for table in [t.new_table(), t.old_table()] {
            fill(&t.ch, &table, size, &t.s).await?;
        }
        quiet(&t.ch, &t.s.database, &[&t.s.table, &t.old]).await?;
        r.add(
            format!("{}: pre-filled twice (by day, by month)", rows_label(size)),
            format!("{:.1} s", filled.elapsed().as_secs_f64()),
            "",
            None,
        );
        let (read, settle) = measure_size(&t, size, runs, &body, &revised, r).await?;
        at.push((size, read, settle));
    }
    if let (Some(small), Some(large)) = (at.first(), at.last()) {
        if large.0 > small.0 {
            for (what, a, b) in [
                ("periodic read", small.1, large.1),
                ("settling a reload", small.2, large.2),
            ] {
                let growth = b.as_secs_f64() / a.as_secs_f64().max(1e-6);
                r.add(
                    format!("{what}: {} / {}", rows_label(large.0), rows_label(small.0)),
                    format!("{growth:.2}x"),
                    "<= 2x",
                    Some(growth <= 2.0),
                );
                r.record(
                    &format!("scale_{}_growth", what.replace(' ', "_")),
                    json!((growth * 100.0).round() / 100.0),
                );
            }
        }
    }
    Ok(())
}

/// The default dataset's answer, and the same with every tenth hour of each
/// transaction revised.
fn datasets() -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let body = full_answer(&SimConfig::new(Secret::new(String::new())))?;
    let mut all: Vec<serde_json::Value> = serde_json::from_slice(&body)?;
    for tx in &mut all {
        if let Some(series) = tx["transactionSeries"].as_array_mut() {
            for rec in series.iter_mut().step_by(10) {
                let total = rec["totalCount"].as_i64().unwrap_or(0) + REVISED;
                rec["totalCount"] = total.into();
            }
        }
    }
    Ok((body.to_vec(), serde_json::to_vec(&all)?))
}

fn rows_label(n: u64) -> String {
    if n >= 1_000_000 && n % 1_000_000 == 0 {
        format!("{}M rows", n / 1_000_000)
    } else {
        format!("{} rows", thousands(n as f64))
    }
}

/// A fresh topic, group and data folder, wmtop's table (made by wmtop) and the
/// month-partitioned one beside it.
async fn tables(settings: &Settings, size: u64, made: &mut Vec<String>) -> anyhow::Result<Tables> {
    let mut s = settings.clone();
    s.table = fresh(&format!("scale{}", size / 1_000_000));
    s.topic = format!("{}_topic", s.table);
    s.group = format!("{}_group", s.table);
    s.data_dir = std::env::temp_dir().join(&s.table);
    std::fs::create_dir_all(&s.data_dir)?;
    made.push(s.table.clone());
    let ch = Ch::connect(&s).await?;
    Loader::prepare(ch.clone(), &s).await?;
    let old = format!("{}_by_month", s.table);
    made.push(old.clone());
    let ddl = metrics_table_ddl(&s.database, &old, ch.version, &Placement::Here)
        .replace(METRICS_PARTITION_KEY, "toYYYYMM(timestamp)");
    ch.execute(&ddl).await?;
    topic::ensure(&Kafka::new(&s)).await?;
    Ok(Tables { ch, s, old })
}

/// Pre-fills `table` with `size` rows of twenty other applications, spread evenly over
/// the two years up to a month after the dataset (so the dataset's days hold others'
/// rows too), in time order, a chunk per statement.
async fn fill(ch: &Ch, table: &str, size: u64, s: &Settings) -> anyhow::Result<()> {
    let hi = s.window().end_ms.div_euclid(1000) + 30 * 86_400;
    let lo = hi - OTHER_DAYS * 86_400;
    let span = hi - lo;
    let mut done = 0;
    while done < size {
        let n = FILL_CHUNK.min(size - done);
        ch.execute(&format!(
            "INSERT INTO {table} (application_id, transaction_name, timestamp, total_count, record_version, record_hash) \
             SELECT concat('other-', toString(k % 20)), concat('GET /other/', toString(intHash32(k) % 122)), \
             toDateTime({lo} + intDiv(k * {span}, {size})), toInt64(k % 1000), 1, k \
             FROM (SELECT number + {done} AS k FROM numbers({n}))"
        ))
        .await
        .with_context(|| format!("pre-filling {table}"))?;
        done += n;
    }
    Ok(())
}

/// Waits (at most two minutes) until no merge runs on these tables, so the figures
/// that follow are not a pre-fill's merges.
async fn quiet(ch: &Ch, database: &str, tables: &[&str]) -> anyhow::Result<()> {
    #[derive(Deserialize)]
    struct N {
        #[serde(deserialize_with = "lenient_u64")]
        n: u64,
    }
    let list: Vec<String> = tables.iter().map(|t| format!("'{t}'")).collect();
    let sql = format!(
        "SELECT count() AS n FROM system.merges WHERE database = '{database}' AND table IN ({})",
        list.join(", ")
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let running = ch.json_rows::<N>(&sql).await?.first().map_or(0, |r| r.n);
        if running == 0 || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The server's clock, in seconds: a mark the logs are read from.
async fn mark(ch: &Ch) -> anyhow::Result<u64> {
    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "lenient_u64")]
        t: u64,
    }
    let now = |ch: &Ch| {
        let ch = ch.clone();
        async move {
            let rows = ch
                .json_rows::<T>("SELECT toUInt64(toUnixTimestamp(now())) AS t")
                .await?;
            anyhow::Ok(rows.first().map_or(0, |r| r.t))
        }
    };
    // Starts on a fresh second, so nothing logged before the mark shares its second.
    let before = now(ch).await?;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let t = now(ch).await?;
        if t > before || Instant::now() >= deadline {
            return Ok(t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Statements on `table` containing every one of `like` that finished since `since`.
async fn logged(ch: &Ch, since: u64, table: &str, like: &[&str]) -> anyhow::Result<Logged> {
    ch.execute("SYSTEM FLUSH LOGS").await?;
    let mut cond = format!("query LIKE '%{table}%'");
    for l in like {
        cond.push_str(&format!(" AND query LIKE '%{}%'", l.replace('\'', "\\'")));
    }
    let sql = format!(
        "SELECT count() AS queries, max(read_rows) AS most_rows, sum(read_rows) AS rows FROM system.query_log \
         WHERE type = 2 AND event_date >= yesterday() AND event_time >= toDateTime({since}) \
         AND query NOT LIKE '%system.query_log%' AND {cond}"
    );
    let found = ch
        .json_rows::<Logged>(&sql)
        .await
        .context("reading system.query_log (the stack logs every query)")?;
    let l = found.into_iter().next().unwrap_or_default();
    if l.queries == 0 {
        bail!("system.query_log holds no statement on {table} with {like:?}: is log_queries on?");
    }
    Ok(l)
}

/// Merges of `table` (`database.table`) since `since`.
async fn merged(ch: &Ch, since: u64, table: &str) -> anyhow::Result<Merged> {
    ch.execute("SYSTEM FLUSH LOGS").await?;
    let (db, t) = table.split_once('.').unwrap_or(("default", table));
    let sql = format!(
        "SELECT count() AS merges, sum(rows) AS rows FROM system.part_log \
         WHERE event_type = 2 AND event_date >= yesterday() AND event_time >= toDateTime({since}) \
         AND database = '{db}' AND table = '{t}'"
    );
    let found = ch
        .json_rows::<Merged>(&sql)
        .await
        .context("reading system.part_log (the stack's servers keep it)")?;
    Ok(found.into_iter().next().unwrap_or_default())
}

/// Publishes `body` and loads it; the run must end done.
async fn load_body(s: &Settings, body: &[u8]) -> anyhow::Result<ConsumeSummary> {
    let answer: Answer = split_answer(body.to_vec().into())?;
    std::fs::write(s.last_fetch_path(), body)?;
    let rep = produce::publish(&Kafka::new(s), &answer).await?;
    if rep.messages_delivered != answer.transactions.len() {
        bail!(
            "published {} of {} messages",
            rep.messages_delivered,
            answer.transactions.len()
        );
    }
    let (_keep, stop) = tokio::sync::watch::channel(false);
    let opts = ConsumeOptions {
        until_idle: Some(Duration::from_secs(1)),
        pause: None,
        lag: None,
    };
    let summary = load::run(s, opts, stop, load::events::Events::default()).await;
    if summary.verdict != Verdict::Done {
        bail!("the load ended {:?}: {:?}", summary.verdict, summary.error);
    }
    Ok(summary)
}

/// One size: the loads, the reload's settling, the periodic read and `check`, each with
/// the statements wmtop ran before on the month-partitioned table. Returns the periodic
/// read's and the settling's times.
async fn measure_size(
    t: &Tables,
    size: u64,
    runs: usize,
    body: &[u8],
    revised: &[u8],
    r: &mut Report,
) -> anyhow::Result<(Duration, Duration)> {
    let label = rows_label(size);
    let key = format!("scale_{}m", size / 1_000_000);
    let (new, old) = (t.new_table(), t.old_table());

    let since = mark(&t.ch).await?;
    let first = load_body(&t.s, body).await?;
    let lookups = logged(&t.ch, since, &new, &["argMax(record_hash"]).await?;
    r.add(
        format!(
            "{label}: load of {} rows",
            thousands(first.rows_inserted as f64)
        ),
        format!(
            "{} ms; lookups read {}",
            first.loaded_ms,
            thousands(lookups.rows as f64)
        ),
        "",
        None,
    );

    let since = mark(&t.ch).await?;
    let second = load_body(&t.s, revised).await?;
    let settled = second.settled.clone().unwrap_or_default();
    if settled.copies_left > 0 {
        bail!("the reload left {} copies", settled.copies_left);
    }
    let looks = logged(&t.ch, since, &new, &["AS copies"]).await?;
    let merges = merged(&t.ch, since, &new).await?;
    let settle = Duration::from_millis(settled.took_ms);
    r.add(
        format!(
            "{label}: settling a reload ({} hours revised)",
            thousands(second.rows_replaced as f64)
        ),
        format!(
            "{} ms; read {}, merged {} in {}",
            settled.took_ms,
            thousands(looks.rows as f64),
            thousands(merges.rows as f64),
            merges.merges
        ),
        "<= 2 s",
        Some(settle <= Duration::from_secs(2)),
    );
    r.record(&format!("{key}_settle_ms"), json!(settled.took_ms));
    r.record(&format!("{key}_settle_rows_read"), json!(looks.rows));
    r.record(&format!("{key}_settle_rows_merged"), json!(merges.rows));

    // The month-partitioned table gets the same rows, a tenth of the hours twice over,
    // and is settled as before: count every written month, merge each, count again.
    let app = t.s.application_id.replace('\'', "\\'");
    t.ch.execute(&format!(
        "INSERT INTO {old} SELECT * FROM {new} WHERE application_id = '{app}'"
    ))
    .await?;
    t.ch.execute(&format!(
        "INSERT INTO {old} SELECT * FROM {new} WHERE application_id = '{app}' AND toUInt32(timestamp) % 36000 < 3600"
    ))
    .await?;
    let months = months_of(&t.ch, &new, &app).await?;
    let since = mark(&t.ch).await?;
    let started = Instant::now();
    let count = format!(
        "SELECT toYYYYMM(timestamp) AS m, count() AS stored, uniqExact(application_id, transaction_name, timestamp) AS distinct \
         FROM {old} WHERE toYYYYMM(timestamp) IN ({months}) GROUP BY m"
    );
    t.ch.query_text(&count, "JSON").await?;
    for m in months.split(", ") {
        t.ch.execute(&format!("OPTIMIZE TABLE {old} PARTITION {m} FINAL"))
            .await?;
    }
    t.ch.query_text(&count, "JSON").await?;
    let before = started.elapsed();
    let old_looks = logged(&t.ch, since, &old, &["toYYYYMM(timestamp) IN"]).await?;
    let old_merges = merged(&t.ch, since, &old).await?;
    r.add(
        format!("{label}: settling as before (by month)"),
        format!(
            "{:.0} ms; read {}, merged {} in {}",
            ms(before),
            thousands(old_looks.rows as f64),
            thousands(old_merges.rows as f64),
            old_merges.merges
        ),
        "",
        None,
    );
    r.record(
        &format!("{key}_settle_before_ms"),
        json!(ms(before).round()),
    );
    r.record(
        &format!("{key}_settle_before_rows_read"),
        json!(old_looks.rows),
    );
    r.record(
        &format!("{key}_settle_before_rows_merged"),
        json!(old_merges.rows),
    );

    let read = periodic_reads(t, &label, &key, runs, r).await?;
    checks(t, &label, &key, runs, r).await?;
    Ok((read, settle))
}

/// The months (`toYYYYMM`) the application's rows are in, as a list for `IN`.
async fn months_of(ch: &Ch, table: &str, app: &str) -> anyhow::Result<String> {
    #[derive(Deserialize)]
    struct M {
        #[serde(deserialize_with = "lenient_u64")]
        m: u64,
    }
    let rows: Vec<M> = ch
        .json_rows(&format!(
            "SELECT DISTINCT toYYYYMM(timestamp) AS m FROM {table} WHERE application_id = '{app}' ORDER BY m"
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|m| m.m.to_string())
        .collect::<Vec<_>>()
        .join(", "))
}

/// The monitor's periodic read (rows per transaction in the window), now and as before.
async fn periodic_reads(
    t: &Tables,
    label: &str,
    key: &str,
    runs: usize,
    r: &mut Report,
) -> anyhow::Result<Duration> {
    let (new, old) = (t.new_table(), t.old_table());
    let since = mark(&t.ch).await?;
    let mut times = Vec::new();
    for _ in 0..runs.max(3) {
        let started = Instant::now();
        let stored = t.ch.stored_per_transaction().await?;
        times.push(started.elapsed());
        if stored.is_empty() {
            bail!("the periodic read found nothing in {new}");
        }
    }
    let now = median(times);
    let log = logged(&t.ch, since, &new, &["GROUP BY transaction_name"]).await?;
    let since = mark(&t.ch).await?;
    let mut times = Vec::new();
    let sql = format!(
        "SELECT transaction_name AS name, count() AS rows, uniqExact(application_id, timestamp) AS distinct \
         FROM {old} GROUP BY transaction_name"
    );
    for _ in 0..runs.max(3) {
        let started = Instant::now();
        t.ch.query_text(&sql, "JSON").await?;
        times.push(started.elapsed());
    }
    let before = median(times);
    let old_log = logged(&t.ch, since, &old, &["GROUP BY transaction_name"]).await?;
    r.add(
        format!("{label}: the monitor's periodic read"),
        format!(
            "{:.1} ms; read {}",
            ms(now),
            thousands(log.most_rows as f64)
        ),
        "<= 100 ms",
        Some(now <= Duration::from_millis(100)),
    );
    r.add(
        format!("{label}: the periodic read as before"),
        format!(
            "{:.1} ms; read {}",
            ms(before),
            thousands(old_log.most_rows as f64)
        ),
        "",
        None,
    );
    r.record(
        &format!("{key}_read_ms"),
        json!((ms(now) * 10.0).round() / 10.0),
    );
    r.record(&format!("{key}_read_rows"), json!(log.most_rows));
    r.record(
        &format!("{key}_read_before_ms"),
        json!((ms(before) * 10.0).round() / 10.0),
    );
    r.record(&format!("{key}_read_before_rows"), json!(old_log.most_rows));
    Ok(now)
}

/// `check` (the last fetch, the topic and the table compared), now and its ClickHouse
/// read as before.
async fn checks(
    t: &Tables,
    label: &str,
    key: &str,
    runs: usize,
    r: &mut Report,
) -> anyhow::Result<()> {
    let (new, old) = (t.new_table(), t.old_table());
    let since = mark(&t.ch).await?;
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let report = check::reconcile(&t.s).await?;
        times.push(started.elapsed());
        if !report.ok() {
            bail!("check found a difference: {report}");
        }
    }
    let now = median(times);
    let log = logged(&t.ch, since, &new, &["GROUP BY n, ts"]).await?;
    let since = mark(&t.ch).await?;
    let sql = format!(
        "SELECT transaction_name AS n, toUnixTimestamp(timestamp) AS ts, count() AS rows FROM {old} GROUP BY n, ts"
    );
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        t.ch.query_text(&sql, "JSON").await?;
        times.push(started.elapsed());
    }
    let before = median(times);
    let old_log = logged(&t.ch, since, &old, &["GROUP BY n, ts"]).await?;
    r.add(
        format!("{label}: check (fetch, topic and table)"),
        format!(
            "{:.0} ms; read {}",
            ms(now),
            thousands(log.most_rows as f64)
        ),
        "",
        None,
    );
    r.add(
        format!("{label}: check's table read as before"),
        format!(
            "{:.0} ms; read {}",
            ms(before),
            thousands(old_log.most_rows as f64)
        ),
        "",
        None,
    );
    r.record(&format!("{key}_check_ms"), json!(ms(now).round()));
    r.record(&format!("{key}_check_rows"), json!(log.most_rows));
    r.record(&format!("{key}_check_before_ms"), json!(ms(before).round()));
    r.record(
        &format!("{key}_check_before_rows"),
        json!(old_log.most_rows),
    );
    Ok(())
}
