//! The idle monitor, measured as a user leaves it: the real binary in tmux at 200x50 on
//! its built-in defaults (its own simulator, a fresh topic and table); CPU over a span
//! and resident memory once it has settled after starting, then `r`, and the same again
//! once the screen says the load is done.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use wmtop_core::config::Settings;

use super::status_kb;

/// CPU and memory over one span.
pub struct Sample {
    pub cpu_percent: f64,
    pub rss_kb: u64,
}

/// The monitor idle before and after one load, and how long the load took.
pub struct Idle {
    pub before: Sample,
    pub after: Sample,
    pub load: Duration,
}

struct Session {
    name: String,
    dir: PathBuf,
}

impl Session {
    fn send(&self, keys: &str) {
        let _ = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, keys])
            .status();
    }

    fn screen(&self) -> String {
        Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.send("q");
        std::thread::sleep(Duration::from_secs(2));
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ticks(stat: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(stat).ok()?;
    let rest = text.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn sample(pid: u32, secs: u64) -> anyhow::Result<Sample> {
    let stat = PathBuf::from(format!("/proc/{pid}/stat"));
    let t0 = ticks(&stat).context("the monitor exited early")?;
    std::thread::sleep(Duration::from_secs(secs));
    let t1 = ticks(&stat).context("the monitor exited early")?;
    let rss = status_kb(&PathBuf::from(format!("/proc/{pid}/status")), "VmRSS:").unwrap_or(0);
    Ok(Sample {
        cpu_percent: (t1 - t0) as f64 * 100.0 / clock_ticks() / secs as f64,
        rss_kb: rss,
    })
}

/// Measures `exe`'s monitor idle before and after a load.
pub fn idle_screen(settings: &Settings, secs: u64, exe: &Path, name: &str) -> anyhow::Result<Idle> {
    let name = name.to_string();
    let dir = std::env::temp_dir().join(&name);
    let cmd = format!(
        "exec env WMTOP_DATA_DIR={dir} WMTOP_TOPIC={name} WMTOP_TABLE={name} WMTOP_GROUP={name} \
         WMTOP_OPS_ADDR=off WMTOP_KAFKA_BROKERS={brokers} WMTOP_CLICKHOUSE_URL={ch} {exe}",
        dir = dir.display(),
        brokers = settings.kafka_brokers,
        ch = settings.clickhouse_url,
        exe = exe.display(),
    );
    let out = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-P",
            "-F",
            "#{pane_pid}",
            "-s",
            &name,
            "-x",
            "200",
            "-y",
            "50",
            &cmd,
        ])
        .output()
        .context("the screen benchmark needs tmux")?;
    if !out.status.success() {
        bail!("tmux: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let session = Session { name, dir };
    let pid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    std::thread::sleep(Duration::from_secs(8));
    let before = sample(pid, secs)?;
    session.send("r");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    while !session.screen().contains("load done") {
        if Instant::now() > deadline {
            bail!("the load did not finish in 300 s:\n{}", session.screen());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let load = started.elapsed();
    std::thread::sleep(Duration::from_secs(10));
    let after = sample(pid, secs)?;
    Ok(Idle {
        before,
        after,
        load,
    })
}
