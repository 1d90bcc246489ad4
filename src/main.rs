//! The `wmtop` binary: parses the command line, sets up logging, and hands over to the
//! headless commands in [`app`]. The pipeline itself lives in the `wmtop` library.

mod app;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = app::Cli::parse();
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
    match runtime.block_on(app::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("wmtop: {e:#}");
            ExitCode::FAILURE
        }
    }
}
