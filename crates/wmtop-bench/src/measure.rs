//! Benchmarks of the pipeline's parts and of the servers' own ceiling: flatten + encode
//! with no I/O, publishing a saved fetch, a bare read of the topic, and ClickHouse's own
//! client inserting the same rows from a file. `wmtop bench` runs them and prints figures.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::message::Message;

use wmtop_core::clickhouse::table::{RowPlan, TableInfo};
use wmtop_core::clickhouse::{Rows, ServerVersion};
use wmtop_core::config::secret::Secret;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{lag, reader, Kafka, KafkaOpError};
use wmtop_core::record::flatten::flatten_each;
use wmtop_core::source::api::{split_answer, Answer};
use wmtop_sim::{full_answer, SimConfig};

/// The simulator's default dataset repeated `scale` times over (122 × `scale`
/// transactions of 288 hours), split as a fetch would be.
pub fn dataset(scale: usize) -> anyhow::Result<Answer> {
    let mut cfg = SimConfig::new(Secret::new(String::new()));
    cfg.transactions *= scale.max(1);
    let body = full_answer(&cfg)?;
    Ok(split_answer(body.into())?)
}

/// Rows made and the time taken.
#[derive(Clone, Copy, Debug, Default)]
pub struct Throughput {
    pub rows: u64,
    pub bytes: u64,
    pub took: Duration,
}

impl Throughput {
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.took.as_secs_f64().max(1e-9)
    }
}

/// The row plan for wmtop's own table on a server of this version.
pub fn own_plan(version: ServerVersion) -> RowPlan {
    RowPlan::for_table("t", &TableInfo::own(version), version)
        .unwrap_or_else(|e| unreachable!("wmtop's own table has a plan: {e}"))
}

/// Flattens and RowBinary-encodes (with version and content hash) every message of
/// `answer`, `passes` times over, on this thread, as the consumer does (rows appended
/// to a batch that is emptied every 5,000 rows). No I/O.
pub fn flatten_encode(answer: &Answer, passes: usize, plan: &RowPlan) -> Throughput {
    let mut rows = Rows::default();
    let mut out = Throughput::default();
    let started = Instant::now();
    for _ in 0..passes {
        for tx in &answer.transactions {
            let flat = flatten_each(&tx.payload, |row| {
                rows.push(plan, row, 1);
                if rows.len() == 5_000 {
                    out.bytes += rows.bytes() as u64;
                    rows = Rows::default();
                }
            });
            if let Ok(f) = flat {
                out.rows += f.good as u64;
            }
        }
    }
    out.bytes += rows.bytes() as u64;
    out.took = started.elapsed();
    out
}

/// Every row of `answer` in RowBinary, as wmtop inserts them into a new table.
pub fn encode_all(answer: &Answer, plan: &RowPlan) -> (Vec<u8>, u64) {
    let mut rows = Rows::default();
    for tx in &answer.transactions {
        let _ = flatten_each(&tx.payload, |row| rows.push(plan, row, 1));
    }
    let n = rows.len() as u64;
    (rows.into_bytes(), n)
}

/// What a bare read of a topic took: every message from the low to the high watermark,
/// read with the one partition reader, with no group, no commits and no work.
#[derive(Clone, Copy, Debug, Default)]
pub struct BareRead {
    pub messages: u64,
    pub bytes: u64,
    pub took: Duration,
}

/// Reads `settings.topic` whole. Blocking.
pub fn bare_read(settings: &Settings) -> Result<BareRead, KafkaOpError> {
    let kafka = Kafka::new(settings);
    kafka.identify(Duration::from_secs(10))?;
    let started = Instant::now();
    let mut out = BareRead::default();
    reader::read_all(&kafka, Duration::from_secs(10), |m| {
        out.messages += 1;
        out.bytes += m.payload().map_or(0, |p| p.len()) as u64;
    })
    .map_err(|e| KafkaOpError::Refused(e.to_string()))?;
    out.took = started.elapsed();
    Ok(out)
}

/// Messages on `settings.topic` (high minus low watermark, over its partitions).
/// Blocking.
pub fn topic_messages(settings: &Settings) -> Result<i64, KafkaOpError> {
    let kafka = Kafka::new(settings);
    let client = kafka.offsets()?;
    Ok(lag::read(&kafka, &client)?
        .iter()
        .map(|p| p.high - p.low)
        .sum())
}

/// Inserts a RowBinary file into `database.table` with ClickHouse's own client
/// (`clickhouse-client`, native protocol on `tcp_port`) and returns the wall time.
pub fn client_insert(
    settings: &Settings,
    tcp_port: u16,
    insert_sql: &str,
    file: &Path,
) -> anyhow::Result<Duration> {
    let input = std::fs::File::open(file)?;
    let host = url::Url::parse(&settings.clickhouse_url)?
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_string();
    let started = Instant::now();
    let out = std::process::Command::new("clickhouse-client")
        .args(["--host", &host, "--port", &tcp_port.to_string()])
        .args(["--user", &settings.clickhouse_user])
        .env("CLICKHOUSE_PASSWORD", settings.clickhouse_password.expose())
        .args(["--database", &settings.database])
        .arg("--query")
        .arg(insert_sql)
        .stdin(input)
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        anyhow::bail!(
            "clickhouse-client ({insert_sql}) failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// The median of some durations (the lower middle one for an even count).
pub fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort_unstable();
    xs.get(xs.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle() {
        let ms = Duration::from_millis;
        assert_eq!(median(vec![ms(5), ms(1), ms(3)]), ms(3));
        assert_eq!(median(vec![ms(4), ms(1), ms(3), ms(2)]), ms(2));
        assert_eq!(median(vec![]), Duration::ZERO);
    }
}
