//! Rendering: snapshots of each pane, focused, at 80x24 (one pane at a time), 120x36
//! and 160x48 (all panes), the help overlay and the dialogs, drawn with TestBackend from
//! a fixed state; and checks that with every pane full of realistic values (10 MiB
//! batches, 3-partition offsets, long names) every header is whole, every number is
//! whole, and any text cut ends in `…`.

use std::time::Duration;

use ratatui::backend::TestBackend;
use ratatui::Terminal;
use wmtop_core::clickhouse::{QueryResult, Stored};
use wmtop_core::kafka::lag::Replicas;
use wmtop_core::kafka::sampler::Holder;
use wmtop_core::kafka::{PartitionLag, ReplayPart};
use wmtop_core::load::events::Event;
use wmtop_core::runtime::monitor::{LagRow, MonitorEvent, Stage, StageState};
use wmtop_core::source::api::Accounting;

use super::{draw, Theme};
use crate::keymap::{Action, Mode};
use crate::state::{App, AppConfig, Pane};

/// The lag pane's rows: one partition held here, one by nobody known, one by a peer.
fn with_lag(a: &mut App) {
    a.on_event(MonitorEvent::Pipeline(Event::Assigned {
        partitions: vec![0, 1],
    }));
    let lag = |partition, committed, high, age: Option<u64>, holder, in_sync| LagRow {
        lag: PartitionLag {
            partition,
            committed: Some(committed),
            low: 0,
            high,
            lag: Some(high - committed),
        },
        oldest_age: age.map(Duration::from_secs),
        holder,
        replicas: Some(Replicas {
            id: partition,
            leader: (in_sync > 0).then_some(1),
            replicas: 3,
            in_sync,
        }),
    };
    let peer = Holder::Member {
        client_id: "wmtop@etl-2/4711".into(),
        host: "10.0.0.8".into(),
    };
    a.on_event(MonitorEvent::Lag(Ok(vec![
        lag(0, 40, 41, Some(75), Holder::This, 3),
        lag(1, 36, 36, None, Holder::Unknown, 2),
        lag(2, 45, 45, None, peer, 0),
    ])));
}

/// Two flushes and the stored counts.
fn with_flushes_and_counts(a: &mut App) {
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
    for (i, f) in a.flushes.rows.iter_mut().enumerate() {
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
}

fn fixed_app() -> App {
    let mut a = App::new(AppConfig {
        table: "watermelon.transaction_metrics".into(),
        log_path: "/var/lib/wmtop/wmtop.log".into(),
        ..AppConfig::default()
    });
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
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
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
    with_lag(&mut a);
    with_flushes_and_counts(&mut a);
    // Times on screen are fixed, so snapshots do not depend on the clock.
    a.txs.counts_at = Some(jiff::Timestamp::from_second(1_767_229_200).unwrap());
    a.lag.history = [0, 3, 8, 12, 5, 1, 0].into_iter().collect();
    a.flushes.per_second = [0, 4000, 9000, 295, 0].into_iter().collect();
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
fn each_pane_at_120x36() {
    for pane in Pane::ALL {
        let mut a = fixed_app();
        a.focus = pane;
        insta::assert_snapshot!(format!("pane_{pane:?}_120x36"), render(&a, 120, 36, PLAIN));
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
    for _ in 0..120 {
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
    assert_eq!(a.key_mode(), Mode::ReplayConfirm);
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
    a.status.insecure = true;
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

#[test]
fn a_late_lag_sample_shows_its_age() {
    let mut a = fixed_app();
    a.focus = Pane::Lag;
    let text = render(&a, 120, 36, PLAIN);
    assert!(
        !text.contains("sampled"),
        "a fresh sample needs no age: {text}"
    );
    a.lag.at = a.lag.at.map(|at| at - std::time::Duration::from_secs(8));
    let text = render(&a, 120, 36, PLAIN);
    assert!(text.contains("sampled 8s ago"), "{text}");
}

/// Names as long as real ones get.
const LONG: [&str; 3] = [
    "GET /api/v2/merchant-settlements/{settlementId}/reconciliation-report",
    "POST /api/v2/payments/authorize",
    "PUT /api/v1/customers/{customerId}/preferences/notifications",
];

/// Every pane full of realistic values.
fn full_app() -> App {
    let mut a = fixed_app();
    a.on_event(MonitorEvent::Fetched {
        per_transaction: LONG
            .iter()
            .map(|n| {
                (
                    n.to_string(),
                    Accounting {
                        served: 288,
                        set_aside: 1,
                    },
                )
            })
            .collect(),
        took: Duration::from_millis(700),
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.on_event(MonitorEvent::Counts(
        LONG.iter()
            .map(|n| {
                (
                    n.to_string(),
                    Stored {
                        rows: 287,
                        distinct: 287,
                    },
                )
            })
            .collect(),
    ));
    a.on_event(MonitorEvent::Lag(Ok((0..3)
        .map(|p| LagRow {
            lag: PartitionLag {
                partition: p,
                committed: Some(1_234_560 + i64::from(p)),
                low: 0,
                high: 1_234_600,
                lag: Some(40 - i64::from(p)),
            },
            oldest_age: Some(Duration::from_secs(75)),
            holder: Holder::This,
            replicas: None,
        })
        .collect())));
    for i in 0..4 {
        a.on_event(MonitorEvent::Pipeline(Event::Flushed {
            rows: 5_184,
            unchanged: 0,
            replaced: 0,
            messages: 18,
            bytes: 11 * 1024 * 1024 + i,
            dead_letters: 0,
            took: Duration::from_millis(1_450),
            retries: 0,
            offsets: vec![
                (0, 1_234_538, 1_234_540),
                (1, 1_234_530, 1_234_536),
                (2, 1_234_510, 1_234_520),
            ],
            per_transaction: vec![],
        }));
    }
    for (i, f) in a.flushes.rows.iter_mut().enumerate() {
        f.at = jiff::Timestamp::from_second(1_767_259_661 + 60 * i as i64).unwrap();
    }
    a
}

/// Asserts `text` is on screen whole, or cut with `…` after at least a few characters.
fn whole_or_marked(screen: &str, text: &str) {
    if screen.contains(text) {
        return;
    }
    let chars: Vec<char> = text.chars().collect();
    let marked = (4..chars.len()).any(|n| {
        let prefix: String = chars[..n].iter().collect();
        screen.contains(&format!("{prefix}…"))
    });
    assert!(marked, "{text:?} is cut without … or missing:\n{screen}");
}

#[test]
fn nothing_that_matters_is_cut_at_120x36_and_80x24() {
    let headers = [
        "part",
        "committed",
        "high",
        "lag",
        "age",
        "held by",
        "time",
        "rows",
        "bytes",
        "took",
        "offsets",
        "outcome",
        "Transaction",
        "API",
        "Msgs",
        "Loaded",
        "Stored",
        "Distinct",
        "Status",
        "transaction_name",
        "avg_error_rate",
    ];
    let numbers = [
        "1234560", "1234600", "40", "5184", "11.0M", "1.4s", "288", "287", "09:27:41",
    ];
    let texts = ["this wmtop", "ok, 1 set aside"];
    // Wide: every pane at once.
    let mut a = full_app();
    a.focus = Pane::Lag;
    let wide = render(&a, 120, 36, PLAIN);
    for h in headers {
        assert!(
            wide.contains(h),
            "header {h:?} not whole at 120x36:\n{wide}"
        );
    }
    for n in numbers {
        assert!(wide.contains(n), "{n:?} not whole at 120x36:\n{wide}");
    }
    for t in texts.iter().chain(LONG.iter()) {
        whole_or_marked(&wide, t);
    }
    assert!(
        wide.contains("3 parts 0:1234538-1234540") || wide.contains("0:1234538-1234540 1:"),
        "{wide}"
    );
    assert!(wide.lines().last().unwrap().ends_with("? help"), "{wide}");
    // Small: each tab on its own.
    for pane in Pane::ALL {
        let mut a = full_app();
        a.focus = pane;
        let small = render(&a, 80, 24, PLAIN);
        assert!(small.lines().last().unwrap().ends_with("? help"), "{small}");
        let (hs, ns): (&[&str], &[&str]) = match pane {
            Pane::Lag => (&headers[..6], &numbers[..3]),
            Pane::Flushes => (&headers[6..12], &numbers[3..6]),
            Pane::Transactions => (&headers[12..19], &numbers[6..8]),
            Pane::Query => (&headers[19..], &[]),
        };
        for h in hs {
            assert!(
                small.contains(h),
                "header {h:?} not whole at 80x24 on {pane:?}:\n{small}"
            );
        }
        for n in ns {
            assert!(
                small.contains(n),
                "{n:?} not whole at 80x24 on {pane:?}:\n{small}"
            );
        }
        if pane == Pane::Transactions {
            for t in LONG {
                whole_or_marked(&small, t);
            }
        }
        // The status bar stays within the screen.
        assert!(small.lines().next().unwrap().chars().count() <= 80);
    }
}

#[test]
fn a_failed_query_shows_the_reason_wrapped_and_no_old_result() {
    let mut a = fixed_app();
    a.focus = Pane::Query;
    a.query.input = tui_input::Input::new("SELECT nope FROM watermelon.transaction_metrics".into());
    a.on_action(Action::EditQuery);
    a.on_action(Action::RunQuery);
    a.on_event(MonitorEvent::QueryDone {
        id: 1,
        result: Err("Code 47: Missing columns: 'nope' while processing query: 'SELECT nope FROM watermelon.transaction_metrics', required columns: 'nope' (Unknown identifier)".into()),
        took: Duration::ZERO,
    });
    let text = render(&a, 80, 24, PLAIN);
    assert!(text.contains("Code 47: Missing columns"), "{text}");
    assert!(
        text.contains("(Unknown identifier)"),
        "the reason is wrapped, not cut:\n{text}"
    );
    assert!(
        !text.contains("GET /api/orders  288"),
        "the old result is gone:\n{text}"
    );
}

#[test]
fn the_replay_dialog_draws_its_input_at_every_size() {
    for (w, h) in [(80, 24), (120, 36), (200, 50)] {
        let mut a = fixed_app();
        a.on_action(Action::Replay);
        a.replay.input = tui_input::Input::new("2026-01-05T00:00:00Z".into());
        let text = render(&a, w, h, PLAIN);
        assert!(
            text.contains("From: 2026-01-05T00:00:00Z"),
            "{w}x{h}:\n{text}"
        );
        assert!(text.contains("message times"), "{w}x{h}:\n{text}");
        a.replay.input = tui_input::Input::new("yesterday-ish".into());
        let text = render(&a, w, h, PLAIN);
        assert!(
            text.contains("! \"yesterday-ish\" is neither"),
            "{w}x{h}:\n{text}"
        );
    }
}

#[test]
fn plain_terminals_get_no_colour_codes_or_box_glyphs() {
    use ratatui::backend::TestBackend;
    let theme = crate::terminal::theme(Some("vt100"), false, crate::terminal::LookFlags::default());
    let a = full_app();
    let mut t = Terminal::new(TestBackend::new(120, 36)).unwrap();
    t.draw(|f| draw(&a, theme, f)).unwrap();
    let buf = t.backend().buffer().clone();
    for cell in buf.content() {
        assert!(cell.symbol().is_ascii(), "non-ASCII {:?}", cell.symbol());
        assert_eq!(cell.fg, ratatui::style::Color::Reset);
        assert_eq!(cell.bg, ratatui::style::Color::Reset);
    }
}

#[test]
fn the_detail_view_marks_gaps_and_copies_and_shows_the_record_beside_its_rows() {
    use wmtop_core::tools::inspect::{HourView, MessageRef, TransactionDetail};
    let mut a = fixed_app();
    a.on_action(Action::Open);
    let name = a.detail.as_ref().unwrap().name.clone();
    let h = |i: i64| 1_767_225_600_000 + i * 3_600_000;
    let detail = TransactionDetail {
        name: name.clone(),
        hours: vec![
            HourView {
                hour_ms: h(0),
                api: Some(1),
                topic: 1,
                stored: 1,
            },
            HourView {
                hour_ms: h(1),
                api: Some(1),
                topic: 1,
                stored: 0,
            },
            HourView {
                hour_ms: h(2),
                api: Some(1),
                topic: 1,
                stored: 2,
            },
        ],
        messages: vec![MessageRef {
            partition: 2,
            offset: 7,
            bytes: 11 * 1024 * 1024,
            at_ms: Some(h(3)),
            records: 3,
        }],
        records: [(
            h(2),
            r#"{"timestamp":1767232800000,"totalCount":"5"}"#.to_string(),
        )]
        .into(),
        rows: [(
            h(2),
            vec![r#"{"transaction_name":"x","total_count":5}"#.to_string(); 2],
        )]
        .into(),
        ..TransactionDetail::default()
    };
    a.on_event(MonitorEvent::Inspected {
        name,
        detail: Ok(detail),
    });
    let text = render(&a, 120, 36, PLAIN);
    assert!(
        text.contains("CH     █x2"),
        "a gap and a copy marked:\n{text}"
    );
    assert!(
        text.contains("hour 3/3"),
        "the newest hour with a record is selected:\n{text}"
    );
    assert!(text.contains("stored 2 - COPIES"), "{text}");
    assert!(text.contains("partition 2 offset 7  11.0M"), "{text}");
    assert!(
        text.contains("\"totalCount\": \"5\""),
        "the record as sent:\n{text}"
    );
    assert!(text.contains("Rows in ClickHouse: 2 (copies)"), "{text}");
    a.on_action(Action::Left);
    let text = render(&a, 120, 36, PLAIN);
    assert!(text.contains("stored 0"), "{text}");
    assert!(text.contains("No row stored for this hour."), "{text}");
}

#[test]
fn the_dead_letter_view_lists_unserved_messages_first_with_reasons() {
    use wmtop_core::clickhouse::DeadLetterEntry;
    use wmtop_core::load::events::Stuck;
    let mut a = fixed_app();
    a.on_event(MonitorEvent::Pipeline(Event::Stuck(Stuck {
        partition: 1,
        offset: 36,
        high: 37,
        size: Some(6_000_000),
        waited_s: 120,
    })));
    a.focus = Pane::Lag;
    a.on_action(Action::DeadLetters);
    a.on_event(MonitorEvent::DeadLetters(Ok(vec![DeadLetterEntry {
        recorded_at: "2026-01-01 00:00:00".into(),
        scope: "record".into(),
        topic: "t".into(),
        kafka_partition: 0,
        kafka_offset: 12,
        message_key: "DELETE /api/cart".into(),
        record_index: 3,
        reason: "record 3: no usable time (timestamp \"soon\")".into(),
        payload_bytes: 61,
        payload_preview: "{\"timestamp\":\"soon\",\"totalCount\":1}".into(),
    }])));
    let text = render(&a, 120, 36, PLAIN);
    let unserved = text.find("UNSERVED").expect("the unserved message listed");
    let record = text
        .find("no usable time")
        .expect("the set-aside record listed");
    assert!(unserved < record, "{text}");
    assert!(text.contains("1 unserved, 1 set aside"), "{text}");
    assert!(text.contains("not served by the broker"), "{text}");
    a.on_action(Action::Down);
    let text = render(&a, 120, 36, PLAIN);
    assert!(
        text.contains("{\"timestamp\":\"soon\",\"totalCount\":1}"),
        "the payload preview:\n{text}"
    );
}

#[test]
fn the_replicas_view_marks_a_down_and_a_read_only_replica_and_the_status_bar_counts_them() {
    use wmtop_core::clickhouse::cluster::ReplicaState;
    let mut a = fixed_app();
    a.on_action(Action::Replicas);
    assert_eq!(
        a.view,
        crate::state::View::Panes,
        "nothing to show before a sample"
    );
    let up = |host: &str, rows, readonly| ReplicaState {
        shard: 1,
        host: host.into(),
        up: true,
        rows: Some(rows),
        absolute_delay: Some(0),
        queue_size: Some(0),
        readonly: Some(readonly),
        last_error: readonly.then(|| "read-only: it cannot reach ZooKeeper".into()),
    };
    a.on_event(MonitorEvent::Replicas(vec![
        up("ch-1:9000", 26_642, false),
        ReplicaState {
            shard: 1,
            host: "ch-2:9000".into(),
            last_error: Some("Connection refused".into()),
            ..ReplicaState::default()
        },
        up("ch-3:9000", 26_600, true),
    ]));
    let text = render(&a, 120, 36, PLAIN);
    assert!(text.contains("rep 2/3!"), "{text}");
    let text = render(&a, 240, 40, PLAIN);
    assert!(
        text.contains("replicas 2/3, 1 stale or read-only"),
        "{text}"
    );
    a.on_action(Action::Replicas);
    let text = render(&a, 120, 36, PLAIN);
    assert!(text.contains("2 of 3 up, 1 stale or read-only"), "{text}");
    let line = |host: &str| {
        text.lines()
            .find(|l| l.contains(host))
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        line("ch-1:9000").contains("26642") && line("ch-1:9000").contains(" up "),
        "{text}"
    );
    assert!(line("ch-2:9000").contains("DOWN"), "{text}");
    assert!(
        line("ch-3:9000").contains("STALE") && line("ch-3:9000").contains("YES"),
        "{text}"
    );
    a.on_action(Action::Down);
    let text = render(&a, 120, 36, PLAIN);
    assert!(
        text.contains("ch-2:9000: Connection refused"),
        "the selected replica's error:\n{text}"
    );
    a.on_action(Action::Cancel);
    assert_eq!(a.view, crate::state::View::Panes);
}

#[test]
fn the_window_fetched_is_on_the_status_bar_in_utc_once_all_is_well() {
    let mut a = fixed_app();
    // fixed_app has an API error: the line says that first.
    assert!(!render(&a, 160, 48, PLAIN).contains("Window fetched"));
    a.on_event(MonitorEvent::Stage {
        stage: Stage::Api,
        state: StageState::Ok,
        error: None,
    });
    let text = render(&a, 160, 48, PLAIN);
    assert!(
        text.contains(
            "All stages healthy. Window fetched: 2025-12-31 18:30 .. 2026-01-12 18:29 UTC."
        ),
        "{text}"
    );
}

#[test]
fn the_profile_in_force_is_on_the_status_bar() {
    let mut a = fixed_app();
    assert!(!render(&a, 160, 48, PLAIN).contains("profile "));
    a.status.profile = Some("staging".into());
    assert!(render(&a, 160, 48, PLAIN).contains("profile staging"));
    assert!(render(&a, 80, 24, PLAIN)
        .lines()
        .next()
        .unwrap()
        .contains("staging"));
}
