//! Where the series come from for a run: the simulator, in-process, when it is the
//! source (asked for, or no API or Keycloak URL set anywhere), with a random password and
//! the settings pointed at it; otherwise the settings as they are.

use std::hash::{BuildHasher, Hasher};

use anyhow::Context;
use wmtop_core::config::secret::Secret;
use wmtop_core::config::{Settings, Source};

pub fn sim_config(settings: &Settings, password: Secret) -> anyhow::Result<wmtop_sim::SimConfig> {
    let mut cfg = wmtop_sim::SimConfig::new(password);
    cfg.realm = settings.realm.clone();
    cfg.client_id = settings.client_id.clone();
    cfg.client_secret = settings.client_secret.clone();
    cfg.username = settings.username.clone();
    cfg.start_ms = settings.window().start_ms;
    cfg.application_id = settings.application_id.parse().with_context(|| {
        format!(
            "application_id {:?} is not a number",
            settings.application_id
        )
    })?;
    Ok(cfg)
}

fn random_password() -> Secret {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    let a = h.finish();
    let mut h2 = std::collections::hash_map::RandomState::new().build_hasher();
    h2.write_u64(a);
    Secret::new(format!("{a:016x}{:016x}", h2.finish()))
}

/// Starts the simulator in-process when it is the source (asked for, or no API or
/// Keycloak URL set anywhere) and returns settings pointing at it; otherwise the
/// settings as they are. A configured API is never replaced.
pub async fn with_simulator(
    settings: &Settings,
    transactions: usize,
) -> anyhow::Result<(Settings, Option<wmtop_sim::SimHandle>)> {
    let Source::Simulator { asked } = settings.source() else {
        return Ok((settings.clone(), None));
    };
    let password = random_password();
    let mut cfg = sim_config(settings, password.clone())?;
    cfg.transactions = transactions;
    // The series are asked for once per load: holding them between loads would keep
    // ~100 MB in a monitor left open.
    cfg.keep_answers = false;
    let handle = wmtop_sim::spawn(cfg)
        .await
        .context("starting the simulator")?;
    let mut s = settings.clone();
    s.api_url = Some(handle.url());
    s.keycloak_url = Some(handle.url());
    s.simulator = false;
    s.password = password;
    tracing::warn!(
        "SIMULATOR: {} the series come from the built-in simulator at {} (simulated data)",
        if asked {
            "as asked,"
        } else {
            "no API or Keycloak URL is set (flag, environment or config file), so"
        },
        handle.url()
    );
    Ok((s, Some(handle)))
}
