//! The monitor end to end, as a user drives it: the real binary in a pseudo-terminal
//! (tmux) against the real stack and its in-process simulator.
//!
//! - Load, reload twice, replay twice: each time the screen says "load done", a plain
//!   count per transaction equals the API's; a query typed straight into the query pane
//!   runs; a copy inserted by hand shows as DUPS; `q` restores the terminal, exit 0.
//! - Keys that cannot hurt and errors you can read, at 120x36: `q` during a load asks;
//!   a bad query shows the server's reason; the replay dialog shows what is typed; Enter
//!   on a transaction opens its detail with the record's JSON; `y` copies it with OSC 52
//!   (read back from a `script` recording); Ctrl-C quits with the batch flushed.
//! - SIGHUP mid-load: the monitor flushes and commits, says so in the log, and a restart
//!   leaves every record stored exactly once.
//! - Scheduled reloads (`WMTOP_RELOAD_EVERY`): the first starts at once and `q` during it
//!   asks; the status bar counts down; later ones run without a key, ask for the last
//!   hours only, and the saved answer and the table still hold the whole window.
//!
//! Each step prints `TUI <step> ms=…` (key press to done, visible with --no-capture).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::tmux::{cells, monitor_command, Tmux};
use common::*;
use wmtop_core::config::Settings;

/// The time the screen says the last load was done, if it says so.
fn done_at(screen: &str) -> Option<String> {
    let at = screen.split("load done ").nth(1)?;
    Some(at.chars().take(8).collect())
}

/// A query typed straight into the query pane (no key to start the editor first):
/// its answer, with the table's `records` rows.
fn typed_query(tmux: &Tmux, s: &Settings, records: usize) {
    tmux.keys(&["4"]);
    tmux.literal(&format!(
        "SELECT 6*7 AS answer, count() AS n FROM {}.{}",
        s.database, s.table
    ));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the query result", 30, |s| s.contains("1 rows, 2 columns"));
    let lines: Vec<&str> = screen.lines().collect();
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
}

#[test]
fn the_monitor_loads_queries_replays_and_quits_cleanly() {
    let s = settings("tui", None);
    let data_dir = s.data_dir.display().to_string();
    let tmux = Tmux::start(
        &unique("wmtop_tui"),
        &monitor_command(&s, "", |c| c),
        160,
        48,
    );
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
    // Nothing runs between steps, so nothing asks for confirmation.
    for (step, keys) in [
        ("reload 1", &["r"][..]),
        ("reload 2", &["r"][..]),
        ("replay 1", &["R"][..]),
        ("replay 2", &["R"][..]),
    ] {
        let started = Instant::now();
        tmux.keys(keys);
        if keys == ["R"] {
            tmux.wait_for("the replay prompt", 10, |s| s.contains("From: "));
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

    typed_query(&tmux, &s, records);

    assert_eq!(
        independent_lag(&s),
        0,
        "an independent client sees everything committed"
    );

    // A copy inserted by hand: the pane says DUPS for that transaction (a plain count).
    // The table's merges are held meanwhile: a background merge of the copy's day (it
    // may hold only a few parts) would otherwise replace it before the pane counts.
    let victim = expected.keys().next().unwrap().clone();
    rt.block_on(hold_merges(&s, true));
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
    rt.block_on(hold_merges(&s, false));

    // q (from a pane other than the query pane, where it is text): flush, commit,
    // restore, exit 0.
    tmux.keys(&["Tab"]);
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

#[test]
fn keys_cannot_hurt_errors_read_whole_and_a_transaction_opens() {
    let s = settings("tui_keys", None);
    let recording = s.data_dir.join("typescript");
    std::fs::create_dir_all(&s.data_dir).unwrap();
    // Small batches: the load takes long enough to press q in the middle of it.
    let command = monitor_command(&s, "WMTOP_BATCH_ROWS=400", |c| {
        format!("script -q -f -e -c \"{c}\" {}", recording.display())
    });
    let tmux = Tmux::start(&unique("wmtop_tui_keys"), &command, 120, 36);
    tmux.wait_for("the monitor", 60, |s| s.contains("press r"));
    let rt = tokio::runtime::Runtime::new().unwrap();

    // q during a load asks, and n stays.
    tmux.keys(&["r"]);
    tmux.wait_for("the load under way", 60, |s| s.contains("reloading"));
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the quit question", 10, |s| s.contains("Quit?"));
    assert!(screen.contains("q/y quit"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("the question gone", 10, |s| !s.contains("Quit?"));
    tmux.wait_for("the load done", 120, |s| done_at(s).is_some());
    let answer = wmtop_core::source::api::read_answer(&s.data_dir.join("last_fetch.json")).unwrap();
    let expected = expected_rows(&answer);
    rt.block_on(assert_exact(&s, &expected));

    // SQL typed into the query pane without starting the editor: it runs, wmtop runs on.
    tmux.keys(&["Tab"]);
    tmux.literal(&format!(
        "SELECT uniq(transaction_name) FROM {}.{}",
        s.database, s.table
    ));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the uniq result", 30, |s| s.contains("1 rows, 1 columns"));
    assert!(
        screen
            .lines()
            .any(|l| cells(l) == vec![expected.len().to_string()]),
        "{screen}"
    );
    // A bad query: the server's reason on screen, not the URL or the SQL echoed.
    tmux.literal(&format!("SELECT nope FROM {}.{}", s.database, s.table));
    tmux.keys(&["Enter"]);
    let screen = tmux.wait_for("the error", 30, |s| s.contains("the query failed"));
    assert!(screen.contains("Unknown identifier"), "{screen}");
    assert!(!screen.contains("8123"), "the URL is not echoed:\n{screen}");
    assert!(
        !screen.contains("1 rows, 1 columns"),
        "the old result is cleared:\n{screen}"
    );

    // The replay dialog draws what is typed and what it means.
    tmux.keys(&["Tab", "R"]);
    tmux.literal("-2h");
    let screen = tmux.wait_for("the replay input", 10, |s| s.contains("From: -2h"));
    assert!(screen.contains("Kafka took at or after"), "{screen}");
    tmux.keys(&["Escape"]);

    // Enter on a transaction: its detail, with the record's JSON from the topic.
    tmux.keys(&["3", "Enter"]);
    let screen = tmux.wait_for("the detail view", 60, |s| {
        s.contains("Record on the topic") && s.contains("\"transaction_name\": ")
    });
    assert!(
        screen.contains("Kafka messages (1; newest last)"),
        "{screen}"
    );
    assert!(screen.contains("Row in ClickHouse"), "{screen}");
    // y: the record's JSON goes out as OSC 52.
    tmux.keys(&["y"]);
    tmux.wait_for("the copy said", 10, |s| {
        s.contains("copied the hour's record JSON")
    });
    tmux.keys(&["Escape"]);

    // Ctrl-C quits, flushing and committing.
    tmux.keys(&["C-c"]);
    let screen = tmux.wait_for("the exit", 60, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(independent_lag(&s), 0, "everything read was committed");
    rt.block_on(assert_exact(&s, &expected));

    let typescript = std::fs::read(&recording).unwrap();
    let text = String::from_utf8_lossy(&typescript);
    let at = text
        .find("\x1b]52;c;")
        .expect("an OSC 52 sequence in the recording");
    let encoded: String = text[at + 7..]
        .chars()
        .take_while(|c| *c != '\x07')
        .collect();
    let copied = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .unwrap();
    let copied = String::from_utf8(copied).unwrap();
    let record: serde_json::Value = serde_json::from_str(&copied).unwrap();
    assert!(record.get("timestamp").is_some(), "{copied}");
}

#[test]
fn sighup_mid_load_flushes_and_commits() {
    let s = settings("tui_hup", None);
    // Small batches: the load takes a while, and the signal comes in the middle of it,
    // once every message is published.
    let command = monitor_command(&s, "WMTOP_BATCH_ROWS=100", |c| c);
    let tmux = Tmux::start(&unique("wmtop_tui_hup"), &command, 120, 36);
    tmux.wait_for("the monitor", 60, |s| s.contains("press r"));
    tmux.keys(&["r"]);
    let screen = tmux.wait_for("the publish, with the load under way", 60, |s| {
        s.contains("published 122 messages") || done_at(s).is_some()
    });
    assert!(
        done_at(&screen).is_none(),
        "the load finished before the signal:\n{screen}"
    );
    // The shell tmux started runs wmtop as its child.
    let shell = tmux.pane_pid();
    let out = Command::new("pgrep")
        .args(["-P", &shell.to_string()])
        .output()
        .unwrap();
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no wmtop under the pane's shell");
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let screen = tmux.wait_for("the exit", 60, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=129"), "{screen}");
    let log = std::fs::read_to_string(s.data_dir.join("wmtop.log")).unwrap();
    assert!(log.contains("stopping on SIGHUP"), "{log}");
    assert!(log.contains("flushed and committed"), "{log}");
    // A restart reads on from what was committed: every record stored exactly once.
    let answer = wmtop_core::source::api::read_answer(&s.data_dir.join("last_fetch.json")).unwrap();
    let expected = expected_rows(&answer);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        consume_until_idle(&s, Duration::from_secs(2)).await;
        assert_exact(&s, &expected).await;
    });
}

#[test]
fn scheduled_reloads_count_down_run_without_a_key_and_quit_still_asks() {
    let s = settings("tui_schedule", None);
    let tmux = Tmux::start(
        &unique("wmtop_tui_schedule"),
        &monitor_command(&s, "WMTOP_RELOAD_EVERY=5s", |c| c),
        160,
        48,
    );
    let rt = tokio::runtime::Runtime::new().unwrap();

    // The first scheduled reload starts at once, with no key: q during it asks.
    tmux.wait_for("the first scheduled reload", 60, |s| {
        s.contains("reloading")
    });
    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the quit question", 10, |s| s.contains("Quit?"));
    assert!(screen.contains("q/y quit"), "{screen}");
    tmux.keys(&["n"]);
    tmux.wait_for("the question gone", 10, |s| !s.contains("Quit?"));

    // Between reloads the status bar counts down to the next one.
    let screen = tmux.wait_for("the countdown", 120, |s| s.contains("next reload in "));
    let left: u64 = screen
        .split("next reload in ")
        .nth(1)
        .and_then(|t| t.split('s').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("a countdown in seconds: {screen}"));
    assert!(left <= 5, "{screen}");

    // Two more reloads without a key: the later ones ask only for the last hours, and
    // the flushes pane says what each found.
    let screen = tmux.wait_for("a third reload", 120, |s| s.contains("reload 3 (since "));
    assert!(screen.contains("unchanged rows"), "{screen}");
    tmux.wait_for("the reload landed", 60, |s| {
        s.contains("next reload in ") && !s.contains("reloading")
    });

    // The saved answer is still the whole window, and the table holds it exactly.
    let answer = wmtop_core::source::api::read_answer(&s.data_dir.join("last_fetch.json")).unwrap();
    assert_eq!(answer.transactions.len(), 122);
    rt.block_on(assert_exact(&s, &expected_rows(&answer)));

    tmux.keys(&["q"]);
    let screen = tmux.wait_for("the exit or the question", 30, |s| {
        s.contains("EXIT=") || s.contains("Quit?")
    });
    if screen.contains("Quit?") {
        tmux.keys(&["y"]);
    }
    let screen = tmux.wait_for("the exit", 60, |s| s.contains("EXIT="));
    assert!(screen.contains("EXIT=0"), "{screen}");
}
