//! `wmtop query`: one query (or a preset) against ClickHouse, read-only unless asked;
//! also the read-only connection every reading command waits for.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::anyhow;
use tokio::sync::watch;
use wmtop_core::clickhouse::{queries, Ch};
use wmtop_core::config::redact::mask_url;
use wmtop_core::config::Settings;

use crate::cli::{Format, QueryArgs};

/// A ClickHouse connection for reading, waiting for the server up to `max_wait`.
pub async fn connect_for_reading(settings: &Settings) -> anyhow::Result<Ch> {
    let (_keep, never) = watch::channel(false);
    let url = mask_url(&settings.clickhouse_url);
    wmtop_core::net::retry::wait_for(
        &format!("ClickHouse at {url}"),
        Some(settings.max_wait.0),
        &never,
        || Ch::connect(settings),
    )
    .await
    .map_err(|e| anyhow!("{e}"))
}

pub async fn query(settings: &Settings, a: QueryArgs) -> anyhow::Result<ExitCode> {
    let ch = connect_for_reading(settings).await?;
    let sql = match queries::preset(a.sql.trim()) {
        Some(p) => p.sql(&ch.qualified(), &ch.window, &a.transaction),
        None => a.sql.clone(),
    };
    let format = match a.format {
        Format::Table => "PrettyCompactMonoBlock",
        Format::Csv => "CSVWithNames",
        Format::Json => "JSONEachRow",
    };
    let started = Instant::now();
    let settings_sent = if a.allow_writes {
        &[][..]
    } else {
        ch.read_only_settings()
    };
    let out = ch.query_text_with(&sql, format, settings_sent).await?;
    print!("{out}");
    tracing::info!(took = ?started.elapsed(), "query done");
    Ok(ExitCode::SUCCESS)
}
