//! wmtop beside a loader written the way such pipelines usually start: the Python in
//! `peer/loader.py` (confluent-kafka and clickhouse-connect, batches of 5,000), loading the
//! same pre-filled topic into a table of the same schema, runs alternating with wmtop's;
//! wall, CPU and peak memory of both, and their ratios.

use std::process::Command;
use std::time::Duration;

use anyhow::bail;
use serde_json::json;
use wmtop_core::clickhouse::{Ch, Loader};
use wmtop_core::config::Settings;
use wmtop_core::source::api::Answer;

use crate::measure::{self, median};
use crate::{fresh, load_fresh, ms, thousands, with, BenchArgs, Loaded, Report};

/// wmtop beside a loader written the way such pipelines usually start (Python with
/// confluent-kafka and clickhouse-connect, batches of 5,000: `peer/loader.py`), loading
/// the same pre-filled topic into tables of the same schema, runs alternating.
pub(crate) async fn run(
    r: &mut Report,
    settings: &Settings,
    a: &BenchArgs,
    runs: usize,
    (scale, topic, answer): &(usize, String, &Answer),
    tables: &mut Vec<String>,
) -> anyhow::Result<()> {
    println!("wmtop and a Python loader, same topic, same schema (alternating runs):");
    let script = std::env::temp_dir().join(format!("{}.py", fresh("peer")));
    std::fs::write(&script, include_str!("../peer/loader.py"))?;
    let rows = answer.records() as u64;
    let (mut ours, mut peers) = (Vec::new(), Vec::new());
    let result = async {
        for _ in 0..runs {
            ours.push(load_fresh(settings, topic, rows, tables)?);
            let table = fresh("peer");
            let s = with(settings, topic, &table);
            let loader = Loader::prepare(Ch::connect(&s).await?, &s).await?;
            tables.push(table.clone());
            let run = measure::run_child(
                Command::new(&a.peer_python)
                    .arg(&script)
                    .args(["--brokers", &settings.kafka_brokers, "--topic", topic])
                    .args(["--group", &format!("{table}_group")])
                    .args(["--url", &settings.clickhouse_url])
                    .args(["--database", &settings.database, "--table", &table]),
            )?;
            let stored = loader.ch.stored_rows().await?;
            if !run.success || stored != rows {
                bail!(
                    "the Python loader ({}) stored {stored} of {rows} rows{}",
                    a.peer_python.display(),
                    if run.success { "" } else { " and failed" }
                );
            }
            peers.push(Loaded {
                wall: run.wall,
                cpu: run.cpu,
                peak_kb: run.peak_kb,
                rows: stored,
            });
        }
        anyhow::Ok(())
    }
    .await;
    let _ = std::fs::remove_file(&script);
    result?;
    report(r, *scale, rows, &ours, &peers);
    Ok(())
}

/// Medians of both, the peak memory of each, and the ratios against their targets.
fn report(r: &mut Report, scale: usize, rows: u64, ours: &[Loaded], peers: &[Loaded]) {
    let med = |xs: &[Loaded], f: fn(&Loaded) -> Duration| median(xs.iter().map(f).collect());
    let (wall, cpu) = (med(ours, |l| l.wall), med(ours, |l| l.cpu));
    let (peer_wall, peer_cpu) = (med(peers, |l| l.wall), med(peers, |l| l.cpu));
    let peak = |xs: &[Loaded]| xs.iter().map(|l| l.peak_kb).max().unwrap_or(0) as f64 / 1024.0;
    let line = |w: Duration, c: Duration, mb: f64| {
        format!("{:.0} ms wall, {:.0} ms CPU, {mb:.0} MB", ms(w), ms(c))
    };
    r.add(
        format!("{scale}x: wmtop ({} rows)", thousands(rows as f64)),
        line(wall, cpu, peak(ours)),
        "",
        None,
    );
    r.add(
        format!("{scale}x: Python loader"),
        line(peer_wall, peer_cpu, peak(peers)),
        "",
        None,
    );
    let wall_ratio = wall.as_secs_f64() / peer_wall.as_secs_f64().max(1e-9);
    let cpu_ratio = cpu.as_secs_f64() / peer_cpu.as_secs_f64().max(1e-9);
    r.add(
        "wmtop / Python: wall".to_string(),
        format!("{wall_ratio:.3} (1/{:.1})", 1.0 / wall_ratio.max(1e-9)),
        "<= 1/3",
        Some(wall_ratio <= 1.0 / 3.0),
    );
    r.add(
        "wmtop / Python: CPU".to_string(),
        format!("{cpu_ratio:.3} (1/{:.1})", 1.0 / cpu_ratio.max(1e-9)),
        "<= 1/30",
        Some(cpu_ratio <= 1.0 / 30.0),
    );
    for (k, v) in [
        ("peer_wmtop_wall_ms", ms(wall)),
        ("peer_wmtop_cpu_ms", ms(cpu)),
        ("peer_wmtop_peak_rss_mb", peak(ours)),
        ("peer_python_wall_ms", ms(peer_wall)),
        ("peer_python_cpu_ms", ms(peer_cpu)),
        ("peer_python_peak_rss_mb", peak(peers)),
    ] {
        r.record(k, json!(v.round()));
    }
    r.record(
        "peer_wall_ratio",
        json!((wall_ratio * 1000.0).round() / 1000.0),
    );
    r.record(
        "peer_cpu_ratio",
        json!((cpu_ratio * 1000.0).round() / 1000.0),
    );
}
