//! Rendering snapshots: each pane, focused, at 80x24 (one pane at a time) and 160x48
//! (all panes), the help overlay and the replay confirmation, drawn with TestBackend
//! from a fixed state.

use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use wmtop_core::clickhouse::{QueryResult, Stored};
use wmtop_core::kafka::{PartitionLag, ReplayPart};
use wmtop_core::load::events::Event;
use wmtop_core::runtime::monitor::{LagRow, MonitorEvent, Stage, StageState};
use wmtop_core::source::api::Accounting;

use super::{draw, Theme};
use crate::keymap::{Action, Mode};
use crate::state::{App, Pane};

fn fixed_app() -> App {
    let dir = std::env::temp_dir().join("wmtop-snapshots-never-written");
    let mut a = App::new(
        "watermelon.transaction_metrics".into(),
        dir.clone(),
        dir.join("wmtop.log"),
        false,
    );
    a.query.history.clear();
    for (stage, state, err) in [
        (Stage::Keycloak, StageState::Ok, None),
        (
            Stage::Api,
            StageState::Retrying(2),
            Some("503: upstream busy".to_string()),
        ),
        (Stage::Kafka, StageState::Ok, None),
        (Stage::ClickHouse, StageState::Ok, None),
    ] {
        a.on_event(MonitorEvent::Stage {
            stage,
            state,
            error: err,
        });
    }
    a.on_event(MonitorEvent::ConsumerRunning(true));
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![
            (
                "GET /api/orders".into(),
                Accounting {
                    served: 288,
                    set_aside: 0,
                },
            ),
            (
                "POST /api/payments".into(),
                Accounting {
                    served: 120,
                    set_aside: 0,
                },
            ),
            (
                "DELETE /api/cart".into(),
                Accounting {
                    served: 8,
                    set_aside: 1,
                },
            ),
        ],
        took: Duration::from_millis(400),
    });
    a.on_event(MonitorEvent::Published {
        per_transaction: vec![
            ("GET /api/orders".into(), 1),
            ("POST /api/payments".into(), 1),
            ("DELETE /api/cart".into(), 1),
        ],
        delivered: 3,
        failed: 0,
        took: Duration::from_millis(90),
    });
    a.on_event(MonitorEvent::Pipeline(Event::Assigned {
        partitions: vec![0, 1],
    }));
    let lag = |partition, committed, high, age: Option<u64>| LagRow {
        lag: PartitionLag {
            partition,
            committed: Some(committed),
            low: 0,
            high,
            lag: Some(high - committed),
        },
        oldest_age: age.map(Duration::from_secs),
    };
    a.on_event(MonitorEvent::Lag(Ok(vec![
        lag(0, 40, 41, Some(75)),
        lag(1, 36, 36, None),
        lag(2, 45, 45, None),
    ])));
    for (rows, per) in [
        (288usize, vec![("GET /api/orders".to_string(), 288u64)]),
        (7, vec![("DELETE /api/cart".into(), 7)]),
    ] {
        a.on_event(MonitorEvent::Pipeline(Event::Flushed {
            rows,
            unchanged: 0,
            replaced: 0,
            messages: 1,
            bytes: rows * 2100,
            dead_letters: 0,
            took: Duration::from_millis(64),
            retries: u32::from(rows == 7),
            offsets: vec![(0, 1, 3), (2, 10, 12)],
            per_transaction: per,
        }));
    }
    for (i, f) in a.flushes.iter_mut().enumerate() {
        f.at = jiff::Timestamp::from_second(1_767_225_600 + 60 * i as i64).unwrap();
    }
    a.on_event(MonitorEvent::Counts(
        [
            (
                "GET /api/orders".to_string(),
                Stored {
                    rows: 288,
                    distinct: 288,
                },
            ),
            (
                "DELETE /api/cart".to_string(),
                Stored {
                    rows: 7,
                    distinct: 7,
                },
            ),
        ]
        .into(),
    ));
    // Times on screen are fixed, so snapshots do not depend on the clock.
    a.counts_at = Some(jiff::Timestamp::from_second(1_767_229_200).unwrap());
    a.lag_history = [0, 3, 8, 12, 5, 1, 0].into_iter().collect();
    a.rows_per_sec = [0, 4000, 9000, 295, 0].into_iter().collect();
    a.query.result = Some(QueryResult {
        columns: vec![
            "transaction_name".into(),
            "rows".into(),
            "avg_error_rate".into(),
        ],
        types: vec!["String".into(), "UInt64".into(), "Float64".into()],
        rows: vec![
            vec!["GET /api/orders".into(), 288.into(), 0.412.into()],
            vec!["DELETE /api/cart".into(), 7.into(), 2.031.into()],
        ],
    });
    a.query.took = Some(Duration::from_millis(12));
    a.message = None;
    a
}

fn render(app: &App, w: u16, h: u16, theme: Theme) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(app, theme, f)).unwrap();
    let buf = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..h {
        let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    // Uptime depends on the clock.
    match out.find(" up ") {
        Some(i) => {
            let end = out[i..].find('\n').map_or(out.len(), |e| i + e);
            out.replace_range(i..end, " up [uptime]");
            out
        }
        None => out,
    }
}

const PLAIN: Theme = Theme {
    color: true,
    ascii: false,
};
const ASCII: Theme = Theme {
    color: false,
    ascii: true,
};

#[test]
fn each_pane_at_80x24() {
    for pane in Pane::ALL {
        let mut a = fixed_app();
        a.focus = pane;
        insta::assert_snapshot!(format!("pane_{pane:?}_80x24"), render(&a, 80, 24, PLAIN));
    }
}

#[test]
fn each_pane_at_160x48() {
    for pane in Pane::ALL {
        let mut a = fixed_app();
        a.focus = pane;
        insta::assert_snapshot!(format!("pane_{pane:?}_160x48"), render(&a, 160, 48, PLAIN));
    }
}

#[test]
fn ascii_mode_uses_no_box_drawing() {
    let a = fixed_app();
    let text = render(&a, 160, 48, ASCII);
    assert!(text.is_ascii(), "non-ASCII glyph drawn in ASCII mode");
    insta::assert_snapshot!("ascii_160x48", text);
}

#[test]
fn help_lists_every_binding_and_the_log_file() {
    let mut a = fixed_app();
    a.on_action(Action::Help);
    let mut seen = String::new();
    // Scroll through the whole overlay, collecting what it shows.
    for _ in 0..40 {
        seen.push_str(&render(&a, 100, 60, PLAIN));
        a.on_action(Action::Down);
    }
    for b in crate::keymap::BINDINGS {
        assert!(seen.contains(b.help), "help lacks {:?}", b.help);
        assert!(
            seen.contains(&b.keys_label()),
            "help lacks keys {}",
            b.keys_label()
        );
    }
    assert!(seen.contains("wmtop.log"));
    let mut a = fixed_app();
    a.on_action(Action::Help);
    insta::assert_snapshot!("help_80x24", render(&a, 80, 24, PLAIN));
}

#[test]
fn replay_confirmation_shows_what_is_re_read() {
    let mut a = fixed_app();
    a.on_action(Action::Replay);
    a.on_action(Action::Accept);
    assert_eq!(a.mode, Mode::Confirm);
    a.on_event(MonitorEvent::ReplayPlan(Ok(vec![
        ReplayPart {
            partition: 0,
            committed: Some(41),
            target: 0,
            high: 41,
        },
        ReplayPart {
            partition: 1,
            committed: None,
            target: 0,
            high: 36,
        },
    ])));
    let text = render(&a, 80, 24, PLAIN);
    assert!(text.contains("then 77 messages are read again"), "{text}");
    insta::assert_snapshot!("replay_confirm_80x24", text);
}

#[test]
fn insecure_mode_is_on_screen() {
    let mut a = fixed_app();
    assert!(!render(&a, 160, 48, PLAIN).contains("TLS VERIFICATION OFF"));
    a.insecure = true;
    assert!(render(&a, 160, 48, PLAIN).contains("TLS VERIFICATION OFF (--insecure)"));
}

#[test]
fn unknown_lag_is_said_not_shown_as_a_number() {
    let mut a = fixed_app();
    a.on_event(MonitorEvent::Lag(Err("broker down".into())));
    a.focus = Pane::Lag;
    let text = render(&a, 80, 24, PLAIN);
    assert!(text.contains("total unknown"), "{text}");
    assert!(text.contains("not current"), "{text}");
    assert!(text.contains("unknown"));
}
