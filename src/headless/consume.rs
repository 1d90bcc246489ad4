//! `wmtop consume`: the consumer until stopped, or until idle with everything read; a
//! replay first when asked. Prints the run's summary; the exit code follows its verdict.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::json;
use tokio::sync::watch;
use wmtop_core::config::{EpochMs, Settings};
use wmtop_core::kafka::{replay, sampler, Kafka, ReplayFrom};
use wmtop_core::load::events::Events;
use wmtop_core::load::{self, ConsumeOptions, ConsumeSummary, Verdict};
use wmtop_core::runtime::ops::{self, Ops};

use super::{print_line, Signals};
use crate::cli::ConsumeArgs;

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
pub fn exit_for(summary: &ConsumeSummary, signals: &Signals) -> ExitCode {
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
        lag: None,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let observer = Arc::clone(&ops);
    tokio::spawn(async move {
        while let Some(e) = rx.recv().await {
            observer.observe(&e);
        }
    });
    let (sampler_stop, sampler_rx) = watch::channel(false);
    let (samples, sampler) = sampler::spawn_sampler(
        Kafka::new(settings),
        Duration::from_secs(5),
        false,
        sampler_rx,
    );
    let follower = ops::follow_lag(Arc::clone(&ops), samples);
    let startup_ms = started.elapsed().as_millis() as u64;
    let summary = load::run(settings, opts, signals.stop.clone(), Events::new(tx)).await;
    let _ = sampler_stop.send(true);
    let _ = sampler.await;
    follower.abort();
    let mut line = serde_json::to_value(&summary)?;
    line["startup_ms"] = json!(startup_ms);
    print_line(line);
    Ok(exit_for(&summary, &signals))
}
