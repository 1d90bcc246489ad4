//! `wmtop schema`: the DDL wmtop creates for a server version.

use std::process::ExitCode;

use anyhow::anyhow;
use wmtop_core::clickhouse::{compat, ServerVersion};
use wmtop_core::config::Settings;

use crate::cli::SchemaArgs;

pub fn schema(settings: &Settings, a: SchemaArgs) -> anyhow::Result<ExitCode> {
    let v = ServerVersion::parse(&a.server_version).ok_or_else(|| {
        anyhow!(
            "--server-version {:?}: expected MAJOR.MINOR",
            a.server_version
        )
    })?;
    println!(
        "{};",
        compat::metrics_ddl(&settings.database, &settings.table, v)
    );
    println!(
        "{};",
        compat::dead_letter_ddl(&settings.database, &settings.table)
    );
    Ok(ExitCode::SUCCESS)
}
