//! `wmtop dead-letters`: what was set aside, with its reason; `--redrive` publishes it
//! again, `--skip P:O` sets aside a message the broker does not serve.

use std::process::ExitCode;

use anyhow::{anyhow, Context};
use serde_json::json;
use wmtop_core::clickhouse::Loader;
use wmtop_core::config::Settings;

use super::{print_line, query::connect_for_reading};
use crate::cli::DeadLettersArgs;

/// `P:O`, as `--skip` takes it.
fn parse_skip(text: &str) -> anyhow::Result<(i32, i64)> {
    let (p, o) = text
        .split_once(':')
        .ok_or_else(|| anyhow!("--skip {text:?}: expected PARTITION:OFFSET, as in 2:0"))?;
    Ok((
        p.trim()
            .parse()
            .with_context(|| format!("--skip {text:?}: the partition is not a number"))?,
        o.trim()
            .parse()
            .with_context(|| format!("--skip {text:?}: the offset is not a number"))?,
    ))
}

pub async fn dead_letters(settings: &Settings, a: DeadLettersArgs) -> anyhow::Result<ExitCode> {
    let ch = connect_for_reading(settings).await?;
    if a.redrive || a.skip.is_some() {
        let done = async {
            let loader = Loader::prepare(ch, settings).await?;
            if let Some(skip) = &a.skip {
                let (partition, offset) = parse_skip(skip)?;
                let skipped =
                    wmtop_core::tools::redrive::skip(settings, &loader, partition, offset).await?;
                return Ok(serde_json::to_value(&skipped)?);
            }
            let report = wmtop_core::tools::redrive::redrive(settings, &loader).await?;
            anyhow::Ok(serde_json::to_value(&report)?)
        }
        .await;
        return match done {
            Ok(line) => {
                print_line(line);
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                print_line(json!({"error": format!("{e:#}")}));
                Err(e)
            }
        };
    }
    print!("{}", ch.dead_letters(a.limit).await?);
    Ok(ExitCode::SUCCESS)
}
