//! The monitor end to end, as a user drives it: the real binary in a pseudo-terminal
//! (tmux) against the real stack and its in-process simulator. Press r and wait for the
//! load to be reported done; press r again, and R twice: each time, the moment the
//! screen says "load done", a plain count per transaction equals the API's; type a query
//! and read its result off the screen; a copy inserted by hand shows as DUPS; press q and
//! check the exit status and that the terminal was restored. Each step prints `TUI <step>
//! ms=…` (key press to done, visible with --no-capture).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

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

/// The time the screen says the last load was done, if it says so.
fn done_at(screen: &str) -> Option<String> {
    let at = screen.split("load done ").nth(1)?;
    Some(at.chars().take(8).collect())
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
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = Instant::now();
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("all 122 transactions loaded", 120, |s| {
        s.contains("Transactions - 122 shown of 122, 0 mismatched")
            && !s.contains("loading")
            && s.contains(" ok ")
            && done_at(s).is_some()
    });
    println!("TUI load ms={}", started.elapsed().as_millis());
    assert!(
        screen.contains("SIMULATOR"),
        "nothing configured: the simulator, said: {screen}"
    );
    assert!(screen.contains("Batch flushes - "), "{screen}");
    let answer = wmtop_core::source::api::read_answer(
        &std::path::Path::new(&data_dir).join("last_fetch.json"),
    )
    .unwrap();
    let expected = expected_rows(&answer);
    let records = answer.records();
    rt.block_on(assert_exact(&s, &expected));
    let mut last_done = done_at(&screen);

    // r twice more, and R twice: the moment the screen says done, no copy anywhere.
    for (step, keys) in [
        ("reload 1", &["r"][..]),
        ("reload 2", &["r"][..]),
        ("replay 1", &["R"][..]),
        ("replay 2", &["R"][..]),
    ] {
        let started = Instant::now();
        tmux.keys(keys);
        if keys == ["R"] {
            tmux.wait_for("the replay prompt", 10, |s| {
                s.contains("From: empty for the beginning")
            });
            tmux.keys(&["Enter"]);
            tmux.wait_for("the replay plan", 30, |s| {
                s.contains("messages are read again")
            });
            tmux.keys(&["y"]);
        }
        let screen = tmux.wait_for(step, 120, |s| {
            done_at(s).is_some_and(|d| Some(d.clone()) != last_done) && !s.contains("reloading")
        });
        println!("TUI {step} ms={}", started.elapsed().as_millis());
        rt.block_on(assert_exact(&s, &expected));
        last_done = done_at(&screen);
    }

    // A query typed in the editor; its result read off the screen.
    tmux.keys(&["Tab"]);
    tmux.keys(&["i", "C-u"]);
    tmux.literal(&format!(
        "SELECT 6*7 AS answer, count() AS n FROM {}.{}",
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

    assert_eq!(
        independent_lag(&s),
        0,
        "an independent client sees everything committed"
    );

    // A copy inserted by hand: the pane says DUPS for that transaction (a plain count).
    tmux.keys(&["Escape"]);
    let victim = expected.keys().next().unwrap().clone();
    rt.block_on(async {
        let sink = ch(&s).await;
        sink.execute(&format!(
            "INSERT INTO {t} SELECT * FROM {t} WHERE transaction_name = {} LIMIT 1",
            wmtop_core::clickhouse::queries::quote(&victim),
            t = sink.qualified()
        ))
        .await
        .unwrap();
    });
    let screen = tmux.wait_for("DUPS on screen", 40, |s| {
        s.contains("1 with DUPS") && s.contains("DUPS 1")
    });
    assert!(
        screen
            .lines()
            .any(|l| l.contains("DUPS 1") && l.contains(&victim[..victim.len().min(20)])),
        "{screen}"
    );

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
