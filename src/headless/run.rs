//! `wmtop run`: the pipeline once, headless: fetch, publish, consume until idle, then
//! rows per transaction (a plain count) against what the API served minus what was set
//! aside.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;
use wmtop_core::config::Settings;
use wmtop_core::kafka::{produce, Kafka};
use wmtop_core::load::events::Events;
use wmtop_core::load::{self, ConsumeOptions, Verdict};

use super::produce::fetch;
use super::query::connect_for_reading;
use super::{print_line, source::with_simulator, Signals};
use crate::cli::{ProduceArgs, RunArgs};

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
        lag: None,
    };
    let summary = load::run(settings, opts, signals.stop.clone(), Events::default()).await;
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
    line["window"] = json!(fetched.window.map(|w| w.json()));
    line["publish_ms"] = json!(published.publish_ms);
    line["consume_ms"] = json!(consume_ms);
    line["load_rows_per_sec"] = json!(summary.rows_inserted * 1000 / busy_ms);
    Ok(line)
}
