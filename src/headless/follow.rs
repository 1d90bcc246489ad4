//! `wmtop follow`: the pipeline as a service. The producer and the consumer run with
//! reloads on the schedule (`reload_every`; after the first, only the new hours and the
//! revision window) until SIGTERM, SIGINT or SIGHUP, which flush and commit; one JSON
//! line per cycle on stdout; /health says when the last cycle succeeded and turns
//! degraded once one is overdue.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use wmtop_core::config::Settings;
use wmtop_core::runtime::monitor::{self, MonitorEvent, MonitorOptions};
use wmtop_core::runtime::ops::{self, Ops};

use super::{print_line, source::with_simulator, Signals};
use crate::cli::FollowArgs;

pub async fn follow(settings: &Settings, a: FollowArgs) -> anyhow::Result<ExitCode> {
    let Some(every) = settings.reload_every else {
        bail!(
            "follow reloads on a schedule: give --reload-every (e.g. 15m), WMTOP_RELOAD_EVERY or reload_every in the config file"
        );
    };
    let signals = Signals::listen();
    let (settings, sim) = with_simulator(settings, a.transactions).await?;
    let ops = Ops::new(&settings.topic);
    let (ops_stop, ops_rx) = tokio::sync::watch::channel(false);
    let health = ops::start(&settings.ops_addr, Arc::clone(&ops), ops_rx).await;
    tracing::info!(
        "following: a reload every {}s (revising the last {}s), health at {}",
        every.0.as_secs_f64(),
        settings.revise.0.as_secs(),
        health.map_or_else(
            || "nowhere (ops_addr off)".to_string(),
            |a| format!("http://{a}/health")
        )
    );
    let (monitor, mut events) = monitor::start(
        settings.clone(),
        MonitorOptions {
            allow_writes: false,
            ops: Some(ops),
            simulator: sim.as_ref().map(|s| s.url()),
            panes: false,
        },
    );
    let mut stop = signals.stop.clone();
    loop {
        tokio::select! {
            _ = stop.wait_for(|v| *v) => break,
            event = events.recv() => match event {
                None => break,
                Some(MonitorEvent::Cycle(c)) => print_line(c.json()),
                Some(_) => {}
            },
        }
    }
    monitor.shutdown(settings.max_wait.0).await;
    let _ = ops_stop.send(true);
    if let Some(s) = sim {
        s.shutdown().await;
    }
    Ok(signals.exit_code())
}
