//! The `wmtop` binary: parses the command line ([`cli`]) and hands over to a headless
//! command ([`headless`]) or the monitor (`wmtop-tui`). The pipeline itself lives in
//! `wmtop-core`.

mod cli;
mod headless;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    wmtop_core::runtime::memory::stay_small();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wmtop: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wmtop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
