//! `wmtop sim`: serves the simulator until stopped, printing where on one JSON line.

use std::process::ExitCode;

use anyhow::{anyhow, bail, Context};
use serde_json::json;
use wmtop_core::config::Settings;

use super::{print_line, source::sim_config, Signals};
use crate::cli::SimArgs;

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
    if a.live {
        if a.hour_length.0 < std::time::Duration::from_millis(100) {
            bail!("--hour-length must be at least 100ms");
        }
        cfg.live = Some(wmtop_sim::Live {
            hour_length: a.hour_length.0,
            behind_hours: a.behind,
            revise_hours: a.revise_hours,
        });
    }
    let listener = tokio::net::TcpListener::bind(&a.addr)
        .await
        .with_context(|| format!("cannot listen on {}", a.addr))?;
    let addr = listener.local_addr()?;
    print_line(json!({
        "sim": format!("http://{addr}"),
        "transactions": a.transactions,
        "hours": a.hours,
        "seed": a.seed,
        "live": a.live.then(|| json!({
            "hour_length_ms": a.hour_length.0.as_millis() as u64,
            "behind_hours": a.behind,
            "revise_hours": a.revise_hours,
        })),
        "shape": a.shape,
        "realm": settings.realm,
        "username": settings.username,
    }));
    let mut stop = Signals::listen().stop;
    wmtop_sim::serve(listener, cfg, async move {
        let _ = stop.wait_for(|v| *v).await;
    })
    .await
    .context("simulator")?;
    Ok(ExitCode::SUCCESS)
}
