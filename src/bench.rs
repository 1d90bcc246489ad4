//! Benchmarks of the pipeline's parts and of the servers' own ceiling: flatten + encode
//! with no I/O, publishing a saved fetch, a bare read of the topic, and ClickHouse's own
//! client inserting the same rows from a file. `wmtop bench` runs them and prints figures.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::api::{split_answer, Answer};
use crate::config::Settings;
use crate::flatten::{flatten_each, TimeMode};
use crate::kafka::{self, KafkaOpError};
use crate::secret::Secret;
use crate::sim::{full_answer, SimConfig};

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

/// Flattens and RowBinary-encodes every message of `answer`, `passes` times over, on
/// this thread, as the consumer does (rows appended to a batch buffer that is emptied
/// every 5,000 rows). No I/O.
pub fn flatten_encode(answer: &Answer, passes: usize, mode: TimeMode) -> Throughput {
    let mut buf = Vec::with_capacity(8 << 20);
    let mut in_batch = 0usize;
    let mut out = Throughput::default();
    let started = Instant::now();
    for _ in 0..passes {
        for tx in &answer.transactions {
            let flat = flatten_each(&tx.payload, mode, |row| {
                row.encode(&mut buf);
                in_batch += 1;
                if in_batch == 5_000 {
                    out.bytes += buf.len() as u64;
                    buf.clear();
                    in_batch = 0;
                }
            });
            if let Ok(f) = flat {
                out.rows += f.good as u64;
            }
        }
    }
    out.bytes += buf.len() as u64;
    out.took = started.elapsed();
    out
}

/// Every row of `answer` in RowBinary, as wmtop inserts them.
pub fn encode_all(answer: &Answer, mode: TimeMode) -> (Vec<u8>, u64) {
    let mut buf = Vec::new();
    let mut rows = 0u64;
    for tx in &answer.transactions {
        if let Ok(f) = flatten_each(&tx.payload, mode, |row| row.encode(&mut buf)) {
            rows += f.good as u64;
        }
    }
    (buf, rows)
}

/// What a bare read of a topic took: every message from the low to the high watermark,
/// read with the consumer's own fetch settings, with no group, no commits and no work.
#[derive(Clone, Copy, Debug, Default)]
pub struct BareRead {
    pub messages: u64,
    pub bytes: u64,
    pub took: Duration,
}

/// Reads `settings.topic` whole with a group-less consumer. Blocking.
pub fn bare_read(settings: &Settings) -> Result<BareRead, KafkaOpError> {
    let fail = |action| kafka::op(&settings.kafka_brokers, action);
    let started = Instant::now();
    let consumer: BaseConsumer = kafka::consumer_config(settings)
        .create()
        .map_err(fail("create consumer"))?;
    let md = consumer
        .fetch_metadata(Some(&settings.topic), Duration::from_secs(10))
        .map_err(fail("read topic metadata"))?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for p in md.topics().iter().flat_map(|t| t.partitions()) {
        let (low, high) = consumer
            .fetch_watermarks(&settings.topic, p.id(), Duration::from_secs(5))
            .map_err(fail("read watermarks"))?;
        remaining += high - low;
        tpl.add_partition_offset(&settings.topic, p.id(), Offset::Offset(low))
            .map_err(fail("build partition list"))?;
    }
    consumer.assign(&tpl).map_err(fail("assign partitions"))?;
    let mut out = BareRead::default();
    let mut quiet = Instant::now();
    while remaining > 0 && quiet.elapsed() < Duration::from_secs(10) {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                out.messages += 1;
                out.bytes += m.payload().map_or(0, |p| p.len()) as u64;
                remaining -= 1;
                quiet = Instant::now();
            }
            Some(Err(e)) => tracing::warn!("bare read: {e}"),
            None => {}
        }
    }
    out.took = started.elapsed();
    Ok(out)
}

/// Messages on `settings.topic` (high minus low watermark, over its partitions).
/// Blocking.
pub fn topic_messages(settings: &Settings) -> Result<i64, KafkaOpError> {
    let consumer = kafka::peek_consumer(settings)?;
    Ok(kafka::lag(&consumer, settings)?
        .iter()
        .map(|p| p.high - p.low)
        .sum())
}

/// Inserts a RowBinary file into `database.table` with ClickHouse's own client
/// (`clickhouse-client`, native protocol on `tcp_port`) and returns the wall time.
pub fn client_insert(
    settings: &Settings,
    tcp_port: u16,
    table: &str,
    file: &Path,
) -> anyhow::Result<Duration> {
    let input = std::fs::File::open(file)?;
    let host = url_host(&settings.clickhouse_url);
    let started = Instant::now();
    let out = std::process::Command::new("clickhouse-client")
        .args(["--host", &host, "--port", &tcp_port.to_string()])
        .args(["--user", &settings.clickhouse_user])
        .env("CLICKHOUSE_PASSWORD", settings.clickhouse_password.expose())
        .args(["--database", &settings.database])
        .arg("--query")
        .arg(format!(
            "INSERT INTO {table} {} FORMAT RowBinary",
            crate::fields::insert_columns()
        ))
        .stdin(input)
        .output()?;
    let took = started.elapsed();
    if !out.status.success() {
        anyhow::bail!(
            "clickhouse-client insert into {table} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(took)
}

/// The host part of an `http://host:port` URL.
fn url_host(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let hostport = rest.split('/').next().unwrap_or(rest);
    match hostport.rsplit_once(':') {
        Some((host, _)) => host.trim_matches(['[', ']']).to_string(),
        None => hostport.to_string(),
    }
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

    #[test]
    fn hosts_come_out_of_urls() {
        assert_eq!(url_host("http://127.0.0.1:8123"), "127.0.0.1");
        assert_eq!(url_host("https://ch.example:8443/x"), "ch.example");
        assert_eq!(url_host("http://[::1]:8123"), "::1");
        assert_eq!(url_host("http://localhost"), "localhost");
    }
}
