//! The monitor end to end, as a user drives it: the real binary in a pseudo-terminal
//! (tmux) against the real stack and its in-process simulator. Press r and wait for the
//! rows; type a query and read its result off the screen; press R, confirm, and check
//! that ClickHouse still holds exactly the API's rows; press q and check the exit status
//! and that the terminal was restored.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::BaseConsumer;
use wmtop::kafka;

struct Tmux {
    session: String,
}

impl Tmux {
    fn start(session: &str, command: &str) -> Tmux {
        let ok = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "160",
                "-y",
                "48",
                command,
            ])
            .status()
            .expect("tmux runs (scripts/test installs it)");
        assert!(ok.success());
        Tmux {
            session: session.to_string(),
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn literal(&self, text: &str) {
        assert!(Command::new("tmux")
            .args(["send-keys", "-t", &self.session, "-l", text])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(150));
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
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
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.session])
            .status();
    }
}

fn total_lag(s: &wmtop::config::Settings) -> Option<i64> {
    let c: BaseConsumer = kafka::consumer_config(s).create().ok()?;
    kafka::lag(&c, s).ok()?.iter().map(|p| p.lag).sum()
}

#[test]
fn the_monitor_loads_queries_replays_and_quits_cleanly() {
    let s = settings("tui", None);
    let data_dir = s.data_dir.display().to_string();
    let env: Vec<String> = env_for(&s)
        .into_iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "WMTOP_API_URL" | "WMTOP_KEYCLOAK_URL" | "WMTOP_PASSWORD"
            )
        })
        .map(|(k, v)| format!("{k}='{v}'"))
        .collect();
    let command = format!(
        "env {} {} ; echo EXIT=$? ; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\?icanon' ; sleep 300",
        env.join(" "),
        wmtop_bin().display()
    );
    let tmux = Tmux::start(&unique("wmtop_tui"), &command);
    tmux.wait_for("the monitor", 60, |s| {
        s.contains("consumer running") && s.contains("press r")
    });

    // r: fetch and publish; the rows arrive and every transaction checks out.
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("all 122 transactions loaded", 120, |s| {
        s.contains("Transactions - 122 shown of 122, 0 mismatched")
            && !s.contains("loading")
            && s.contains(" ok ")
    });
    assert!(screen.contains("Batch flushes - "), "{screen}");
    let answer =
        wmtop::api::read_answer(&std::path::Path::new(&data_dir).join("last_fetch.json")).unwrap();
    let expected = expected_rows(&answer);
    let records = answer.records();
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert_eq!(rt.block_on(rows_in_clickhouse(&s)), expected);

    // A query typed in the editor; its result read off the screen.
    tmux.keys(&["Tab"]);
    tmux.keys(&["i", "C-u"]);
    tmux.literal(&format!(
        "SELECT 6*7 AS answer, count() AS n FROM {}.{} FINAL",
        s.database, s.table
    ));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the query result", 30, |s| s.contains("1 rows, 2 columns"));
    let lines: Vec<&str> = screen.lines().collect();
    let cells = |line: &str| -> Vec<String> {
        // The query pane is the right-hand column: the cells right of the divider.
        let right = line.rsplit_once("│┃").map_or(line, |(_, r)| r);
        right
            .split(|c: char| c.is_whitespace() || c == '┃')
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let status = lines
        .iter()
        .position(|l| l.contains("1 rows, 2 columns"))
        .unwrap();
    assert_eq!(
        cells(lines[status + 1]),
        vec!["answer", "n"],
        "{}",
        lines[status + 1]
    );
    assert_eq!(
        cells(lines[status + 2]),
        vec!["42".to_string(), records.to_string()],
        "{}",
        lines[status + 2]
    );

    // R, confirm: the topic is re-read into ClickHouse without doubling anything.
    tmux.keys(&["Escape", "R"]);
    tmux.wait_for("the replay prompt", 10, |s| {
        s.contains("From: empty for the beginning")
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the replay plan", 30, |s| {
        s.contains("messages are read again")
    });
    tmux.keys(&["y"]);
    tmux.wait_for("the replay to start", 30, |s| {
        s.contains("replay started: re-reading 122 messages")
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    while total_lag(&s) != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the replay did not catch up; screen:\n{}",
            tmux.screen()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        rt.block_on(rows_in_clickhouse(&s)),
        expected,
        "rows per transaction after the replay"
    );
    tmux.wait_for("the replayed rows on screen", 30, |s| {
        s.contains("Transactions - 122 shown of 122, 0 mismatched")
    });

    // q: flush, commit, restore the terminal, exit 0.
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit", 60, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.lines().any(|l| l.trim() == "icanon"),
        "terminal left in raw mode:\n{screen}"
    );
    assert!(
        !screen.contains("Consumer lag"),
        "the alternate screen was not left:\n{screen}"
    );
}
