//! Benchmarks of the pipeline's parts and of the servers' own ceiling: flatten + encode
//! with no I/O, publishing a saved fetch, a bare read of the topic, and ClickHouse's own
//! client inserting the same rows from a file. `wmtop bench` runs them and prints figures.

use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};

use wmtop_core::clickhouse::table::{RowPlan, TableInfo};
use wmtop_core::clickhouse::{Rows, ServerVersion};
use wmtop_core::config::secret::Secret;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{lag, reader, Kafka, KafkaOpError};
use wmtop_core::load::batch::{Batch, Flat};
use wmtop_core::record::flatten::flatten_fields;
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
            let flat = flatten_fields(&tx.payload, |row| {
                rows.push_fields(plan, row, 1);
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

/// Flattens and encodes every message of `answer`, `passes` times over, the way the
/// consumer could: each message into rows of its own on one of `lanes` threads
/// ([`Flat::of`]), taken into a batch in the order the messages came ([`Batch::add`]),
/// the batch emptied every 5,000 rows. A lane's rows, once taken, go back to it to be
/// filled again (no growing a fresh buffer for every message). No I/O.
pub fn flatten_lanes(answer: &Answer, passes: usize, plan: &RowPlan, lanes: usize) -> Throughput {
    let messages: Vec<OwnedMessage> = answer
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            OwnedMessage::new(
                Some(tx.payload.to_vec()),
                tx.name.clone().map(String::into_bytes),
                "bench".into(),
                rdkafka::Timestamp::CreateTime(1),
                0,
                i as i64,
                None,
            )
        })
        .collect();
    let lanes = lanes.max(1);
    let mut out = Throughput::default();
    let started = Instant::now();
    // Message g of the run (passes × messages) is flattened on lane g % lanes.
    let total = passes * messages.len();
    std::thread::scope(|scope| {
        let mut receivers = Vec::new();
        let mut returns = Vec::new();
        for lane in 0..lanes {
            let (tx, rx) = std::sync::mpsc::sync_channel::<(Flat, Rows)>(1);
            let (back, taken) = std::sync::mpsc::channel::<Rows>();
            receivers.push(rx);
            returns.push(back);
            let messages = &messages;
            scope.spawn(move || {
                for g in (lane..total).step_by(lanes) {
                    let mut rows = taken.try_recv().unwrap_or_default();
                    let flat = Flat::of(plan, &messages[g % messages.len()], &mut rows);
                    if tx.send((flat, rows)).is_err() {
                        return;
                    }
                }
            });
        }
        let mut batch = Batch::default();
        for g in 0..total {
            let Ok((flat, mut rows)) = receivers[g % lanes].recv() else {
                break;
            };
            batch.rows.append(&mut rows);
            // A lane that has finished has dropped its end: nothing to give back.
            let _ = returns[g % lanes].send(rows);
            if let Ok(f) = &batch.add("bench", flat).outcome {
                out.rows += f.good as u64;
            }
            if batch.rows.len() >= 5_000 {
                out.bytes += std::mem::take(&mut batch).rows.bytes() as u64;
            }
        }
        out.bytes += batch.rows.bytes() as u64;
    });
    out.took = started.elapsed();
    out
}

/// Every row of `answer` in RowBinary, as wmtop inserts them into a new table.
pub fn encode_all(answer: &Answer, plan: &RowPlan) -> (Vec<u8>, u64) {
    let mut rows = Rows::default();
    for tx in &answer.transactions {
        let _ = flatten_fields(&tx.payload, |row| rows.push_fields(plan, row, 1));
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

/// A child process run to its end: its wall time (spawn to exit), CPU time (user +
/// system, from the kernel's accounting of the reaped child), peak resident memory (the
/// kernel's high-water mark, read every 20 ms: `ru_maxrss` would count the benchmark's
/// own memory, which the child holds between fork and exec) and what it printed.
#[derive(Debug, Default)]
pub struct ChildRun {
    pub wall: Duration,
    pub cpu: Duration,
    pub peak_kb: u64,
    pub stdout: Vec<u8>,
    pub success: bool,
}

/// Runs `cmd` (its stdout piped, stderr discarded) and measures it.
pub fn run_child(cmd: &mut std::process::Command) -> anyhow::Result<ChildRun> {
    use std::io::Read;
    let started = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        out
    });
    let pid = i32::try_from(child.id())?;
    let status_path = std::path::PathBuf::from(format!("/proc/{pid}/status"));
    let mut run = ChildRun::default();
    loop {
        if let Some(kb) = crate::status_kb(&status_path, "VmHWM:") {
            run.peak_kb = run.peak_kb.max(kb);
        }
        let mut status = 0;
        // SAFETY: rusage is plain data the kernel fills; pid is our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if reaped == pid {
            run.wall = started.elapsed();
            let tv = |t: libc::timeval| {
                Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
            };
            run.cpu = tv(usage.ru_utime) + tv(usage.ru_stime);
            run.success = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
            break;
        }
        if reaped < 0 {
            anyhow::bail!(
                "waiting for the child failed: {}",
                std::io::Error::last_os_error()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    run.stdout = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reading the child's output failed"))?;
    Ok(run)
}

/// The broker's own write ceiling: Apache Kafka's producer performance tool (from the
/// same jars the stack runs) sending the payloads of `answer` (one per record, picked in
/// turn at random by the tool) with acks=all and idempotence, as wmtop publishes. Returns
/// the time the tool's byte rate gives for all of `answer`'s bytes (JVM start-up is not
/// counted; the tool times itself from its first send).
pub fn producer_tool(
    settings: &Settings,
    topic: &str,
    answer: &Answer,
    kafka_libs: &Path,
) -> anyhow::Result<Duration> {
    let file = std::env::temp_dir().join(format!("{}.payloads", crate::fresh("tool")));
    let mut body = Vec::with_capacity(answer.bytes + answer.transactions.len());
    for tx in &answer.transactions {
        if tx.payload.contains(&b'\n') {
            anyhow::bail!("a payload holds a newline, the tool's delimiter");
        }
        body.extend_from_slice(&tx.payload);
        body.push(b'\n');
    }
    std::fs::write(&file, body)?;
    let out = std::process::Command::new("java")
        .arg("-Xmx1g")
        .arg("-cp")
        .arg(format!("{}/*", kafka_libs.display()))
        .arg("org.apache.kafka.tools.ProducerPerformance")
        .args(["--topic", topic])
        .args(["--num-records", &answer.transactions.len().to_string()])
        .arg("--payload-file")
        .arg(&file)
        .args(["--throughput", "-1", "--producer-props"])
        .arg(format!("bootstrap.servers={}", settings.kafka_brokers))
        .args(["acks=all", "enable.idempotence=true", "linger.ms=5"])
        .arg(format!("max.request.size={}", 11 * 1024 * 1024))
        .arg("buffer.memory=67108864")
        .output();
    let _ = std::fs::remove_file(&file);
    let out = out?;
    let text = String::from_utf8_lossy(&out.stdout);
    // The last line: "122 records sent, 40.1 records/sec (19.31 MB/sec), …".
    let mib_per_sec = text
        .lines()
        .rev()
        .find_map(|l| {
            let (_, rest) = l.split_once("records/sec (")?;
            rest.split_once(" MB/sec")?.0.trim().parse::<f64>().ok()
        })
        .filter(|_| out.status.success())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the producer performance tool failed or printed no rate: {}{}",
                text.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        })?;
    Ok(Duration::from_secs_f64(
        answer.bytes as f64 / (mib_per_sec * 1024.0 * 1024.0),
    ))
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
