//! Secrets never leak: after runs with a known password and client secret (headless
//! commands, a refused login, and the monitor), neither they nor any token the
//! simulator issued (its tokens start `wmsa.` and `wmsr.`) appear in stdout, stderr,
//! logs, the screen, saved files or summaries. `--insecure` says loudly that it is on.

mod common;

use std::path::Path;
use std::process::Command;

use common::tmux::Tmux;
use common::*;
use wmtop_core::config::secret::Secret;
use wmtop_core::config::Settings;

const CLIENT_SECRET: &str = "client-secret-9b1d44e0";

fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else if let Ok(bytes) = std::fs::read(&p) {
                out.push((p.display().to_string(), bytes));
            }
        }
    }
}

fn assert_clean(what: &str, text: &[u8]) {
    let t = String::from_utf8_lossy(text);
    for needle in [PASSWORD, CLIENT_SECRET, "wmsa.", "wmsr."] {
        assert!(!t.contains(needle), "{what} contains {needle:?}");
    }
}

/// The monitor against the test's simulator: fetch and load (r), the help screen (?),
/// quit; returns the screen showing the help. Debug logging, the client secret set.
fn monitor_with_help(s: &Settings) -> Vec<u8> {
    let env: Vec<String> = env_for(s)
        .into_iter()
        .map(|(k, v)| format!("{k}='{v}'"))
        .chain([
            format!("WMTOP_CLIENT_SECRET='{CLIENT_SECRET}'"),
            "WMTOP_LOG=debug".into(),
            "WMTOP_OPS_ADDR=off".into(),
        ])
        .collect();
    let cmd = format!(
        "env {} {}; echo EXIT=$?; sleep 60",
        env.join(" "),
        wmtop_bin().display()
    );
    let tmux = Tmux::start(&unique("wmtop_sec"), &cmd, 160, 48);
    tmux.wait_for("the monitor", 60, |sc| sc.contains("consumer running"));
    tmux.keys(&["r"]);
    tmux.wait_for("the load", 60, |sc| {
        sc.contains("Transactions - 8 shown of 8, 0 mismatched") && !sc.contains("loading")
    });
    tmux.keys(&["?"]);
    let help = tmux.wait_for("the help", 10, |sc| sc.contains("Log file:"));
    tmux.keys(&["Escape"]);
    tmux.wait_for("the help closed", 10, |sc| !sc.contains("Help (Esc closes"));
    // Ctrl-c quits from any pane; it flushes, commits and writes the last log lines
    // before the process ends.
    tmux.keys(&["C-c"]);
    tmux.wait_for("the exit", 60, |sc| sc.contains("EXIT="));
    help.into_bytes()
}

#[test]
fn no_secret_or_token_appears_anywhere() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut cfg = sim_config(8, 24);
    cfg.client_secret = Some(Secret::new(CLIENT_SECRET));
    let sim = rt.block_on(start_sim(cfg));
    let s = settings("secret", Some(&sim.url()));
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut c = Command::new(wmtop_bin());
        c.args(args)
            .envs(env_for(&s))
            .env("WMTOP_CLIENT_SECRET", CLIENT_SECRET)
            .env("WMTOP_LOG", "debug")
            .env("WMTOP_OPS_ADDR", "off");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    for (args, extra) in [
        (vec!["produce"], vec![]),
        (vec!["consume", "--until-idle", "2"], vec![]),
        (vec!["query", "rows"], vec![]),
        (vec!["dead-letters"], vec![]),
        (vec!["check", "--json"], vec![]),
        (vec!["--insecure", "produce"], vec![]),
        (
            vec!["produce"],
            vec![("WMTOP_PASSWORD", "not-the-password-1")],
        ),
    ] {
        let out = run(&args, &extra);
        outputs.push((format!("{args:?} stdout"), out.stdout.clone()));
        outputs.push((format!("{args:?} stderr"), out.stderr.clone()));
        if args[0] == "--insecure" {
            assert!(String::from_utf8_lossy(&out.stderr)
                .contains("TLS certificate verification is OFF"));
        }
        if extra.is_empty() {
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            assert!(!out.status.success());
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("invalid_grant"), "{err}");
            assert!(!err.contains("not-the-password-1"), "{err}");
        }
    }
    assert!(
        sim.stats().token_requests >= 3,
        "tokens were issued: the grep has something to find"
    );

    // The monitor, against the same simulator: fetch, load, help, quit; screen and log.
    outputs.push(("monitor screen with help".into(), monitor_with_help(&s)));

    // Everything the runs wrote: the saved answer, logs, history.
    files_under(&s.data_dir, &mut outputs);
    assert!(outputs.iter().any(|(n, _)| n.ends_with("last_fetch.json")));
    assert!(outputs
        .iter()
        .any(|(n, b)| n.ends_with("wmtop.log") && !b.is_empty()));
    for (what, bytes) in &outputs {
        assert_clean(what, bytes);
    }
    rt.block_on(sim.shutdown());
}
