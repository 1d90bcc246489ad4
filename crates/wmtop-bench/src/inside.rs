//! What ClickHouse itself spent inside a run's inserts, from its own log
//! (`system.query_log`): how many inserts, how many parts they wrote, their time on the
//! server and how much of it was the kernel's, and the files it created for them. Printed
//! beside the ceiling's and the load's, it shows what bounds a load: each insert writes a
//! part per day it spans, a part is a file per column stream (320 for wmtop's table), and
//! a part costs the server about the same whatever its rows. Also the wait before a
//! run for the server's recent table drops to age ([`after_recent_drops`]).

use anyhow::Context;
use serde::Deserialize;
use wmtop_core::clickhouse::client::lenient_u64;
use wmtop_core::clickhouse::Ch;

/// The server's own account of a set of tables' inserts.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Inside {
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) inserts: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) parts: u64,
    /// Files the server opened for writing the parts (`FileOpen`).
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) files: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) server_ms: u64,
    #[serde(deserialize_with = "lenient_u64")]
    pub(crate) kernel_us: u64,
}

impl Inside {
    /// Per run (the figures are summed over `runs` runs), in words.
    pub(crate) fn per_run(&self, runs: usize) -> String {
        let n = runs.max(1) as f64;
        let inserts = self.inserts as f64 / n;
        let parts = self.parts as f64 / n;
        let server = self.server_ms as f64 / n;
        format!(
            "{inserts:.0} insert{}, {parts:.0} parts, {:.0} files, {server:.0} ms ({:.0} ms in the kernel; {:.1} ms a part)",
            if inserts.round() == 1.0 { "" } else { "s" },
            self.files as f64 / n,
            self.kernel_us as f64 / 1000.0 / n,
            server / parts.max(1.0),
        )
    }
}

/// The finished inserts into `tables` (of the connection's database), summed.
pub(crate) async fn inserts(ch: &Ch, tables: &[String]) -> anyhow::Result<Inside> {
    if tables.is_empty() {
        return Ok(Inside::default());
    }
    ch.execute("SYSTEM FLUSH LOGS").await?;
    let into = tables
        .iter()
        .map(|t| format!("position(query, 'INSERT INTO {}.{t} ') = 1", ch.database))
        .collect::<Vec<_>>()
        .join(" OR ");
    // ProfileEvents are two arrays up to ClickHouse 21 and a map after.
    let forms = [
        |e: &str| format!("ProfileEvents.Values[indexOf(ProfileEvents.Names, '{e}')]"),
        |e: &str| format!("ProfileEvents['{e}']"),
    ];
    let mut last = None;
    for event in forms {
        let (parts, files, kernel) = (
            event("MergeTreeDataWriterBlocks"),
            event("FileOpen"),
            event("SystemTimeMicroseconds"),
        );
        let sql = format!(
            "SELECT count() AS inserts, sum({parts}) AS parts, sum({files}) AS files, \
             sum(query_duration_ms) AS server_ms, \
             sum({kernel}) AS kernel_us FROM system.query_log \
             WHERE type = 2 AND event_date >= yesterday() AND ({into})"
        );
        match ch.json_rows::<Inside>(&sql).await {
            Ok(rows) => return Ok(rows.into_iter().next().unwrap_or_default()),
            Err(e) => last = Some(e),
        }
    }
    Err(anyhow::Error::from(
        last.context("no form of the query was tried")?,
    ))
    .context("reading system.query_log")
}

/// How long after many files are deleted creating one stays dearer: ext4 passes over
/// inodes freed in the last 30 seconds (35 while their block is dirty) when it picks one.
const DELETIONS_AGE: u64 = 35;

/// Waits until the newest `DROP TABLE` the server logged is [`DELETIONS_AGE`] seconds
/// old (at most that long), so that a run started right after another (which dropped
/// its tables at the end) does not pay for those deletions in its first inserts. Returns
/// the seconds waited; none when the server keeps no query log.
pub(crate) async fn after_recent_drops(ch: &Ch) -> u64 {
    #[derive(Deserialize)]
    struct Wait {
        #[serde(deserialize_with = "lenient_u64")]
        wait_s: u64,
    }
    let _ = ch.execute("SYSTEM FLUSH LOGS").await;
    let sql = format!(
        "SELECT toUInt64(greatest(0, {DELETIONS_AGE} - (toUInt32(now()) - toUInt32(max(event_time))))) \
         AS wait_s FROM system.query_log WHERE type = 2 AND event_date >= yesterday() \
         AND position(query, 'DROP TABLE') = 1"
    );
    let wait = match ch.json_rows::<Wait>(&sql).await {
        Ok(rows) => rows.first().map_or(0, |w| w.wait_s.min(DELETIONS_AGE)),
        Err(_) => 0,
    };
    if wait > 0 {
        tokio::time::sleep(std::time::Duration::from_secs(wait)).await;
    }
    wait
}
