//! The monitor in a pseudo-terminal: tmux runs the real binary; keys are sent and the
//! screen is read back as text.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{env_for, wmtop_bin};

/// A tmux session running one command, killed when dropped.
pub struct Tmux {
    session: String,
}

impl Tmux {
    pub fn start(session: &str, command: &str, w: u16, h: u16) -> Tmux {
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
                command,
            ])
            .status()
            .expect("tmux runs (scripts/test installs it)");
        assert!(ok.success());
        Tmux {
            session: session.to_string(),
        }
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn literal(&self, text: &str) {
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", "--", text])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(150));
    }

    pub fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The pid of the process tmux started for the pane.
    pub fn pane_pid(&self) -> u32 {
        let out = Command::new("tmux")
            .args(["display", "-p", "-t", &self.session, "#{pane_pid}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

/// The monitor's command line on the built-in source (the simulator), with `extra`
/// environment.
pub fn monitor_command(
    s: &wmtop_core::config::Settings,
    extra: &str,
    wrap: impl Fn(String) -> String,
) -> String {
    let env: Vec<String> = env_for(s)
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "WMTOP_API_URL" | "WMTOP_KEYCLOAK_URL" | "WMTOP_PASSWORD"
            )
        })
        .map(|(k, v)| format!("{k}='{v}'"))
        .collect();
    let run = wrap(format!(
        "env {} {extra} {}",
        env.join(" "),
        wmtop_bin().display()
    ));
    format!(
        "{run} ; echo EXIT=$? ; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon' ; sleep 300"
    )
}

/// A table row's cells, without the pane borders.
pub fn cells(line: &str) -> Vec<String> {
    line.split(|c: char| c.is_whitespace() || c == '│' || c == '┃')
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect()
}
