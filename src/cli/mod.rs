//! The command line: every subcommand's flags (clap) and what each runs, logging set up
//! for the front end in use (stderr for headless commands, a file for the monitor).
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use wmtop_core::config::{CommonArgs, Settings, Span};

use crate::headless;
pub use wmtop_bench::BenchArgs;

/// Runs and watches the Watermelon pipeline: Keycloak -> series API -> Kafka -> ClickHouse.
#[derive(Parser, Debug)]
#[command(name = "wmtop", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub screen: ScreenArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How the monitor (wmtop with no command) draws.
#[derive(clap::Args, Debug)]
pub struct ScreenArgs {
    /// Most frames drawn per second; nothing is drawn while nothing changes.
    #[arg(long, env = "WMTOP_FPS", default_value_t = 10)]
    pub fps: u32,
    /// No colours (NO_COLOR is honoured too; plain terminals such as TERM=vt100 get none).
    #[arg(long, conflicts_with = "color")]
    pub no_color: bool,
    /// Colours even on a terminal that looks plain (TERM=vt100, linux, dumb).
    #[arg(long)]
    pub color: bool,
    /// Plain ASCII, for terminals without box-drawing glyphs (the default on plain ones).
    #[arg(long, env = "WMTOP_ASCII", conflicts_with = "unicode")]
    pub ascii: bool,
    /// Box-drawing glyphs even on a terminal that looks plain.
    #[arg(long)]
    pub unicode: bool,
    /// Mouse: the wheel scrolls, a click focuses a pane (off: the terminal keeps
    /// selecting text as usual).
    #[arg(long)]
    pub mouse: bool,
    /// Let the query pane run statements that write.
    #[arg(long)]
    pub allow_writes: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the Watermelon simulator (Keycloak token endpoint and series API) until stopped.
    /// It accepts the user --username with the password in WMTOP_PASSWORD.
    Sim(SimArgs),
    /// Fetch the series (or read a saved answer) and publish one message per transaction.
    Produce(ProduceArgs),
    /// Consume the topic into ClickHouse.
    Consume(ConsumeArgs),
    /// Run a query against ClickHouse and print the result.
    Query(QueryArgs),
    /// List the messages and records set aside, with their reasons.
    DeadLetters(DeadLettersArgs),
    /// Print the table DDL wmtop uses for a ClickHouse version.
    Schema(SchemaArgs),
    /// The whole pipeline once, headless: produce, then consume until idle, then compare
    /// rows per transaction (the simulator in-process only when it is the source).
    Run(RunArgs),
    /// Run the pipeline as a service: reload on the schedule (--reload-every; after the
    /// first, only the new hours and the revision window), consume, and print one JSON
    /// line per cycle until stopped; /health turns degraded once a cycle is overdue.
    Follow(FollowArgs),
    /// Compare what the API served (the saved fetch), the topic and ClickHouse, per
    /// transaction and hour, with plain counts; exit 1 on any gap or stored copy.
    Check(CheckArgs),
    /// Print the settings in force (flags over environment over file over defaults),
    /// secrets shown only as set or not.
    Config(ConfigArgs),
    /// Benchmark wmtop against the local stack (scripts/stack up) and print the figures
    /// next to their targets: flatten + encode, produce, the servers' own ceiling, load
    /// end to end at 1x and 10x, frame draw time, and the idle monitor's CPU and RSS.
    Bench(BenchArgs),
}

#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8180")]
    pub addr: String,
    /// Transactions served.
    #[arg(long, default_value_t = 122)]
    pub transactions: usize,
    /// Hourly slots from the start time (with --live: hours of history before the
    /// current hour).
    #[arg(long, default_value_t = 288)]
    pub hours: usize,
    /// Seed of the data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Response shape: array, data, records or series.
    #[arg(long, default_value = "array")]
    pub shape: String,
    /// Faults, e.g. "latency_ms=200,fail_5xx=2,strings_for_numbers=0.1".
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Lifetime of access tokens.
    #[arg(long, default_value = "300s")]
    pub token_ttl: Span,
    /// Move with the clock: serve hours up to the current hour (--hours of history
    /// before it), revising the last --revise-hours between requests as a live API does.
    #[arg(long)]
    pub live: bool,
    /// With --live: how long one hour lasts (2s for a demonstration or a test); the
    /// clock starts --behind hours back and catches up with the wall clock's hour.
    #[arg(long, default_value = "1h", requires = "live")]
    pub hour_length: Span,
    /// With --live: hours behind the wall clock's hour the clock starts.
    #[arg(long, default_value_t = 0, requires = "live")]
    pub behind: u32,
    /// With --live: hours, counting the current one, whose figures move between requests.
    #[arg(long, default_value_t = 3, requires = "live")]
    pub revise_hours: u32,
}

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Publish a saved answer instead of fetching.
    #[arg(long, value_name = "PATH")]
    pub from_file: Option<PathBuf>,
    /// Where to save the raw answer (default: <data_dir>/last_fetch.json).
    #[arg(long, value_name = "PATH", conflicts_with = "from_file")]
    pub save: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Exit after this many seconds with no new message, once everything is read,
    /// landed and settled (default: run until stopped). --max-wait bounds every wait.
    #[arg(long, value_name = "SECS")]
    pub until_idle: Option<f64>,
    /// Re-read the topic: "beginning", or a time (epoch ms or RFC 3339), matched
    /// against the messages' Kafka times. Hours already stored are not stored again.
    #[arg(long, value_name = "FROM")]
    pub replay: Option<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Csv,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    /// The SQL, or a preset: rows, avg7d, p95, health, errors.
    pub sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Allow statements that write (the default is read-only).
    #[arg(long)]
    pub allow_writes: bool,
    /// Transaction for the p95 preset.
    #[arg(long, default_value = "")]
    pub transaction: String,
}

#[derive(clap::Args, Debug)]
pub struct DeadLettersArgs {
    /// Most recent entries to list.
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// Publish the set-aside messages to the topic again (after a fix) and remove them
    /// from the list; prints a JSON summary.
    #[arg(long, conflicts_with = "skip")]
    pub redrive: bool,
    /// A message the broker will not serve, as PARTITION:OFFSET: record it as a dead
    /// letter ("not served by the broker") and move the group past it. Stop the group's
    /// consumers first.
    #[arg(long, value_name = "PARTITION:OFFSET")]
    pub skip: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SchemaArgs {
    /// Server version to write the DDL for (e.g. 18.16 or 25.8).
    #[arg(long, default_value = "25.8")]
    pub server_version: String,
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Seconds without a new message before the load counts as done.
    #[arg(long, default_value_t = 3.0)]
    pub idle: f64,
    /// Transactions the in-process simulator serves (when it is the source).
    #[arg(long, default_value_t = 122)]
    pub transactions: usize,
}

#[derive(clap::Args, Debug)]
pub struct FollowArgs {
    /// Transactions the in-process simulator serves (when it is the source).
    #[arg(long, default_value_t = 122)]
    pub transactions: usize,
}

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Print as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// List the config file's profiles (each with the keys it sets, never their values).
    #[arg(long)]
    pub profiles: bool,
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Print the report as one JSON line instead of a readable summary.
    #[arg(long)]
    pub json: bool,
}

fn log_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_env("WMTOP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,librdkafka=warn,rdkafka=warn"))
}

/// Headless commands log to stderr.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// The monitor logs to a file: nothing may print over the screen.
fn init_file_logging(path: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false)
        .with_target(false)
        .try_init();
    Ok(())
}

/// Runs the chosen command.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::resolve(&cli.common)?;
    if cli.command.is_none() {
        init_file_logging(&settings.data_dir.join("wmtop.log"))?;
    } else {
        init_logging();
    }
    for w in &settings.warnings {
        tracing::warn!("{w}");
    }
    match cli.command {
        Some(Command::Sim(a)) => headless::sim::sim(&settings, a).await,
        Some(Command::Produce(a)) => headless::produce::produce(&settings, a).await,
        Some(Command::Consume(a)) => headless::consume::consume(&settings, a).await,
        Some(Command::Query(a)) => headless::query::query(&settings, a).await,
        Some(Command::DeadLetters(a)) => headless::dead_letters::dead_letters(&settings, a).await,
        Some(Command::Schema(a)) => headless::schema::schema(&settings, a),
        Some(Command::Run(a)) => headless::run::run_once(&settings, a).await,
        Some(Command::Follow(a)) => headless::follow::follow(&settings, a).await,
        Some(Command::Check(a)) => headless::check::check(&settings, a).await,
        Some(Command::Config(a)) => headless::config::config(&settings, a).await,
        Some(Command::Bench(a)) => wmtop_bench::run(&settings, a).await,
        None => monitor(&settings, cli.screen).await,
    }
}

/// The monitor: the simulator in-process when it is the source, then the TUI. A signal
/// that stopped it gives the shell's code for it (129 for SIGHUP, 143 for SIGTERM).
async fn monitor(settings: &Settings, screen: ScreenArgs) -> anyhow::Result<ExitCode> {
    let (settings, sim) = headless::source::with_simulator(settings, 122).await?;
    let flag = |yes: bool, no: bool| match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let theme = wmtop_tui::terminal::theme(
        std::env::var("TERM").ok().as_deref(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        wmtop_tui::terminal::LookFlags {
            color: flag(screen.color, screen.no_color),
            ascii: flag(screen.ascii, screen.unicode),
        },
    );
    let opts = wmtop_tui::TuiOptions {
        fps: screen.fps,
        theme,
        allow_writes: screen.allow_writes,
        mouse: screen.mouse,
        simulator: sim.as_ref().map(|s| s.url()),
    };
    let outcome = wmtop_tui::run(&settings, opts).await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    outcome.map(|ended| match ended {
        wmtop_tui::Ended::Quit => ExitCode::SUCCESS,
        wmtop_tui::Ended::Signal(n) => ExitCode::from(128 + n as u8),
        wmtop_tui::Ended::TerminalLost => ExitCode::from(129),
    })
}
