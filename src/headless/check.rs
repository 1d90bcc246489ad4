//! `wmtop check`: reconciliation of API, topic and ClickHouse per transaction and hour,
//! as text or one JSON line; exit 1 on any gap or stored copy.

use std::process::ExitCode;

use serde_json::json;
use wmtop_core::config::Settings;
use wmtop_core::tools::check;

use super::print_line;
use crate::cli::CheckArgs;

pub async fn check(settings: &Settings, a: CheckArgs) -> anyhow::Result<ExitCode> {
    let report = match check::reconcile(settings).await {
        Ok(r) => r,
        Err(e) => {
            if a.json {
                let waited = e.waited_for().map(|(what, partition, offset)| {
                    json!({"what": what, "partition": partition, "offset": offset})
                });
                print_line(json!({"ok": false, "error": e.to_string(), "waited_for": waited}));
            }
            return Err(e.into());
        }
    };
    let ok = report.ok();
    let report = report.capped(check::LISTED);
    if a.json {
        let mut line = serde_json::to_value(&report)?;
        line["ok"] = json!(ok);
        print_line(line);
    } else {
        print!("{report}");
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
