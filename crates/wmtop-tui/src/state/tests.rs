use std::time::Duration;

use tui_input::Input;
use wmtop_core::clickhouse::{QueryResult, Stored};
use wmtop_core::kafka::lag::Replicas;
use wmtop_core::kafka::sampler::Holder;
use wmtop_core::kafka::{PartitionLag, ReplayFrom, ReplayPart};
use wmtop_core::load::events::{Event, Stuck};
use wmtop_core::runtime::monitor::{Command, LagRow, MonitorEvent, Stage, StageState};
use wmtop_core::source::api::Accounting;

use super::*;
use crate::effects::{Effect, Format};
use crate::keymap::{Action, Mode};

fn served(n: u64) -> Accounting {
    Accounting {
        served: n,
        set_aside: 0,
    }
}

fn stored(n: u64) -> Stored {
    Stored {
        rows: n,
        distinct: n,
    }
}

fn app() -> App {
    App::new(AppConfig {
        table: "db.t".into(),
        ..AppConfig::default()
    })
}

fn lag(partition: i32, lag: Option<i64>) -> LagRow {
    LagRow {
        lag: PartitionLag {
            partition,
            committed: Some(0),
            low: 0,
            high: lag.unwrap_or(0),
            lag,
        },
        oldest_age: None,
        holder: Holder::Unknown,
        replicas: None,
    }
}

fn flushed(rows: usize, per: &[(&str, u64)]) -> MonitorEvent {
    MonitorEvent::Pipeline(Event::Flushed {
        rows,
        unchanged: 0,
        replaced: 0,
        messages: 1,
        bytes: rows * 1000,
        dead_letters: 0,
        took: Duration::from_millis(50),
        retries: 0,
        offsets: vec![(0, 0, 3)],
        per_transaction: per.iter().map(|(n, c)| ((*n).to_string(), *c)).collect(),
    })
}

fn commands(effects: &[Effect]) -> Vec<&Command> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send(c) => Some(c),
            _ => None,
        })
        .collect()
}

/// Ages the newest flush so the load counts as quiet.
fn quieten(a: &mut App) {
    if let Some(f) = a.flushes.rows.front_mut() {
        f.at = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(10);
    }
}

#[test]
fn a_load_moves_transactions_from_loading_to_ok() {
    let mut a = app();
    assert!(matches!(
        commands(&a.on_action(Action::Reload))[..],
        [Command::Reload]
    ));
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![("GET /a".into(), served(3)), ("GET /b".into(), served(2))],
        took: Duration::from_millis(10),
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.on_event(MonitorEvent::Published {
        per_transaction: vec![("GET /a".into(), 1), ("GET /b".into(), 1)],
        delivered: 2,
        failed: 0,
        took: Duration::from_millis(5),
    });
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(2))])));
    assert_eq!(a.visible_txs()[0].2, TxStatus::Loading);
    a.on_event(flushed(5, &[("GET /a", 3), ("GET /b", 2)]));
    a.on_event(MonitorEvent::Reloading(false));
    a.on_event(MonitorEvent::Counts(
        [
            ("GET /a".to_string(), stored(3)),
            ("GET /b".to_string(), stored(1)),
        ]
        .into(),
    ));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
    let rows = a.visible_txs();
    assert_eq!(
        rows[0].1,
        &TxRow {
            api: Some(served(3)),
            produced: 1,
            loaded: 3,
            stored: Some(stored(3))
        }
    );
    assert_eq!(rows[0].2, TxStatus::Ok(0));
    // GET /b: fewer rows in ClickHouse than the API served; just flushed, so loading ...
    assert_eq!(rows[1].2, TxStatus::Loading);
    // ... and once things are quiet, a mismatch.
    quieten(&mut a);
    assert_eq!(a.visible_txs()[1].2, TxStatus::Missing(1));
    assert_eq!(a.flushes.totals.rows, 5);
    assert_eq!(a.flushes.totals.batches, 1);
}

#[test]
fn an_unchanged_sample_does_not_redraw() {
    let mut a = app();
    let ok = || MonitorEvent::Stage {
        stage: Stage::Kafka,
        state: StageState::Ok,
        error: None,
    };
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
    a.on_event(ok());
    a.tick();
    a.dirty = false;
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
    a.on_event(ok());
    a.tick();
    assert!(!a.dirty, "nothing shown changed");
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(3))])));
    assert!(a.dirty);
    a.dirty = false;
    a.on_event(MonitorEvent::Stage {
        stage: Stage::Kafka,
        state: StageState::Down,
        error: Some("x".into()),
    });
    assert!(a.dirty);
}

#[test]
fn a_sparkline_moves_only_while_its_shown_span_holds_data() {
    let mut a = app();
    a.spark_span.set(4);
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(7))])));
    a.tick();
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
    // The 7 scrolls along the shown four seconds, one frame each ...
    for second in 1..4 {
        a.dirty = false;
        a.tick();
        assert!(a.dirty, "second {second}: the 7 is still shown and moves");
    }
    // ... and once it has scrolled off, a second changes nothing.
    a.dirty = false;
    a.tick();
    assert!(!a.dirty, "only zeros are shown");
    assert_eq!(a.lag.history.iter().filter(|n| **n == 7).count(), 1);
}

#[test]
fn each_stage_keeps_its_own_last_error_until_it_is_ok() {
    let mut a = app();
    let stage = |a: &mut App, stage, state, error: Option<&str>| {
        a.on_event(MonitorEvent::Stage {
            stage,
            state,
            error: error.map(str::to_string),
        })
    };
    stage(
        &mut a,
        Stage::Api,
        StageState::Retrying(1),
        Some("503 upstream busy"),
    );
    stage(
        &mut a,
        Stage::ClickHouse,
        StageState::Down,
        Some("Code 516: wrong password"),
    );
    stage(&mut a, Stage::Api, StageState::Retrying(2), None);
    let errors: Vec<_> = a
        .status
        .errors()
        .iter()
        .map(|(s, e)| (*s, e.text.clone()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (Stage::Api, "503 upstream busy".to_string()),
            (Stage::ClickHouse, "Code 516: wrong password".to_string())
        ]
    );
    stage(&mut a, Stage::Api, StageState::Ok, None);
    assert_eq!(a.status.errors().len(), 1);
    a.on_action(Action::Errors);
    assert_eq!(a.key_mode(), Mode::Errors);
    a.on_action(Action::Cancel);
    assert_eq!(a.overlay, None);
}

#[test]
fn a_reconciliation_with_gaps_shows_in_the_verdict_until_the_next_flush() {
    let mut a = app();
    assert!(matches!(
        commands(&a.on_action(Action::Verify))[..],
        [Command::Check]
    ));
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![("GET /a".into(), served(3))],
        took: Duration::ZERO,
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.on_event(flushed(3, &[("GET /a", 3)]));
    a.on_event(MonitorEvent::Counts(
        [("GET /a".to_string(), stored(3))].into(),
    ));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(0))])));
    quieten(&mut a);
    assert_eq!(a.visible_txs()[0].2, TxStatus::Ok(0));
    let report = wmtop_core::tools::check::Report {
        transactions: vec![wmtop_core::tools::check::TransactionCheck {
            name: "GET /a".into(),
            counts: wmtop_core::tools::check::Counts {
                gaps: 2,
                ..Default::default()
            },
        }],
        ..Default::default()
    };
    a.on_event(MonitorEvent::Checked(Ok(report)));
    assert_eq!(a.visible_txs()[0].2, TxStatus::Gaps(2));
    assert!(a.message.as_ref().unwrap().0.starts_with("verify:"));
    // A later load makes the finding stale: back to the counts' verdict.
    a.on_event(flushed(1, &[("GET /a", 1)]));
    a.flushes.rows[0].at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(1);
    a.on_event(MonitorEvent::Counts(
        [("GET /a".to_string(), stored(3))].into(),
    ));
    assert_ne!(a.visible_txs()[0].2, TxStatus::Gaps(2));
}

#[test]
fn lag_is_unknown_until_sampled_and_after_a_failed_sample() {
    let mut a = app();
    assert_eq!(a.lag.total(), None);
    a.on_event(MonitorEvent::Lag(Ok(vec![
        lag(0, Some(4)),
        lag(1, Some(1)),
    ])));
    assert_eq!(a.lag.total(), Some(5));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(4)), lag(1, None)])));
    assert_eq!(
        a.lag.total(),
        None,
        "one unknown partition makes the total unknown"
    );
    a.on_event(MonitorEvent::Lag(Err("broker down".into())));
    assert_eq!(
        a.lag.total(),
        None,
        "a failed sample is not shown as current"
    );
    assert_eq!(a.lag.error.as_deref(), Some("broker down"));
}

#[test]
fn partitions_short_of_replicas_or_of_a_leader_are_counted_while_current() {
    let with = |partition, leader: Option<i32>, in_sync| LagRow {
        replicas: Some(Replicas {
            id: partition,
            leader,
            replicas: 3,
            in_sync,
        }),
        ..lag(partition, Some(0))
    };
    let mut a = app();
    a.on_event(MonitorEvent::Lag(Ok(vec![
        with(0, Some(1), 3),
        with(1, Some(2), 2),
        with(2, None, 0),
        with(3, Some(3), 1),
        lag(4, Some(0)),
    ])));
    assert_eq!(a.lag.replica_trouble(), (2, 1));
    a.on_event(MonitorEvent::Lag(Err("broker down".into())));
    assert_eq!(a.lag.replica_trouble(), (0, 0), "not current: not counted");
}

#[test]
fn filter_and_sort() {
    let mut a = app();
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![
            ("GET /a".into(), served(3)),
            ("POST /b".into(), served(9)),
            ("GET /c".into(), served(1)),
        ],
        took: Duration::ZERO,
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.on_action(Action::Filter);
    assert_eq!(a.key_mode(), Mode::Filter);
    a.txs.filter = Input::new("get".into());
    a.on_action(Action::Accept);
    assert_eq!(a.key_mode(), Mode::Transactions);
    let names = |a: &App| -> Vec<String> { a.visible_txs().iter().map(|r| r.0.clone()).collect() };
    assert_eq!(names(&a), vec!["GET /a", "GET /c"]);
    a.on_action(Action::Sort); // by API records
    a.on_action(Action::SortReverse);
    assert_eq!(names(&a), vec!["GET /a", "GET /c"]);
    a.on_action(Action::SortReverse);
    assert_eq!(names(&a), vec!["GET /c", "GET /a"]);
    a.on_action(Action::Filter);
    a.on_action(Action::Cancel);
    assert_eq!(a.visible_txs().len(), 3);
}

#[test]
fn replay_checks_the_time_as_typed_then_asks_for_confirmation() {
    let mut a = app();
    a.on_action(Action::Replay);
    assert_eq!(a.key_mode(), Mode::ReplayFrom);
    assert_eq!(
        a.replay.meaning().unwrap(),
        "from the first message still on the topic"
    );
    let effects = a.on_action(Action::Accept);
    assert!(matches!(
        commands(&effects)[..],
        [Command::PlanReplay(ReplayFrom::Beginning)]
    ));
    assert_eq!(a.key_mode(), Mode::ReplayConfirm);
    assert!(
        a.on_action(Action::Confirm).is_empty(),
        "nothing happens before the plan is shown"
    );
    let plan = vec![ReplayPart {
        partition: 0,
        committed: Some(5),
        target: 0,
        high: 5,
    }];
    a.on_event(MonitorEvent::ReplayPlan(Ok(plan.clone())));
    let effects = a.on_action(Action::Confirm);
    assert!(matches!(commands(&effects)[..], [Command::Replay(p)] if *p == plan));
    assert_eq!(a.overlay, None);
    // A time, matched against message times, then data times.
    a.on_action(Action::Replay);
    a.replay.input = Input::new("2026-01-05T00:00:00Z".into());
    assert!(a
        .replay
        .meaning()
        .unwrap()
        .contains("Kafka took at or after 2026-01-05 00:00:00 UTC"));
    a.on_action(Action::ToggleTimeMatch);
    assert!(a
        .replay
        .meaning()
        .unwrap()
        .contains("records reach 2026-01-05 00:00:00 UTC"));
    let effects = a.on_action(Action::Accept);
    assert!(matches!(
        commands(&effects)[..],
        [Command::PlanReplay(ReplayFrom::DataTime(1_767_571_200_000))]
    ));
    a.on_action(Action::Cancel);
    // Back from now.
    a.on_action(Action::Replay);
    a.replay.input = Input::new("-2h".into());
    let Ok(ReplayFrom::DataTime(ms)) = a.replay.from() else {
        panic!("-2h is a time")
    };
    let back = jiff::Timestamp::now().as_millisecond() - ms;
    assert!((7_190_000..7_210_000).contains(&back), "{back}");
    // A bad one: said as typed, Enter does nothing.
    a.replay.input = Input::new("last tuesday".into());
    assert!(a.replay.meaning().unwrap_err().contains("last tuesday"));
    assert!(a.on_action(Action::Accept).is_empty());
    assert_eq!(a.key_mode(), Mode::ReplayFrom);
}

#[test]
fn queries_run_keep_history_and_take_only_their_own_result() {
    let mut a = app();
    a.focus = Pane::Query;
    a.on_action(Action::Type('S'));
    assert_eq!(a.key_mode(), Mode::Edit);
    assert_eq!(a.query.input.value(), "S");
    a.query.input = Input::new("SELECT 1".into());
    let effects = a.on_action(Action::RunQuery);
    assert!(matches!(commands(&effects)[..], [Command::Query { id: 1, sql }] if sql == "SELECT 1"));
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::SaveHistory(h) if h == &["SELECT 1".to_string()])));
    // A stale answer (another id) is ignored.
    a.on_event(MonitorEvent::QueryDone {
        id: 7,
        result: Err("old".into()),
        took: Duration::ZERO,
    });
    assert!(a.query.running.is_some());
    let r = QueryResult {
        columns: vec!["1".into()],
        types: vec!["UInt8".into()],
        rows: vec![vec![serde_json::json!(1)]],
    };
    a.on_event(MonitorEvent::QueryDone {
        id: 1,
        result: Ok(r.clone()),
        took: Duration::from_millis(3),
    });
    assert_eq!(a.query.result, Some(r));
    assert!(a.query.running.is_none());
    // A failed query clears the old result: nothing stale is shown or exported.
    a.on_action(Action::EditQuery);
    a.query.input = Input::new("SELECT nope".into());
    a.on_action(Action::RunQuery);
    a.on_event(MonitorEvent::QueryDone {
        id: 2,
        result: Err("Code 47: Unknown identifier: nope".into()),
        took: Duration::ZERO,
    });
    assert_eq!(a.query.result, None);
    assert!(a.on_action(Action::ExportAs).is_empty());
    assert_eq!(a.overlay, None, "no export offered without a result");
    // Presets fill the editor with the selected transaction.
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![("GET /z".into(), served(1))],
        took: Duration::ZERO,
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.focus = Pane::Transactions;
    a.on_action(Action::Presets);
    assert_eq!(a.key_mode(), Mode::Presets);
    let effects = a.on_action(Action::Preset(2));
    assert!(
        matches!(commands(&effects)[..], [Command::Query { sql, .. }] if sql.contains("transaction_name = 'GET /z'"))
    );
}

#[test]
fn exports_and_copies_are_effects_with_the_result() {
    let mut a = app();
    a.focus = Pane::Query;
    let r = QueryResult {
        columns: vec!["a".into(), "b".into()],
        types: vec!["String".into(), "UInt8".into()],
        rows: vec![
            vec![serde_json::json!("x"), serde_json::json!(1)],
            vec![serde_json::json!("y"), serde_json::json!(2)],
        ],
    };
    a.query.result = Some(r.clone());
    a.on_action(Action::ExportAs);
    assert_eq!(a.key_mode(), Mode::ExportAs);
    let effects = a.on_action(Action::ExportJson);
    assert!(
        matches!(&effects[..], [Effect::Export { format: Format::JsonLines, result }] if *result == r)
    );
    a.on_action(Action::Down);
    a.on_action(Action::Right);
    a.on_action(Action::CopyWhat);
    let effects = a.on_action(Action::CopyCell);
    assert!(matches!(&effects[..], [Effect::Copy { text, .. }] if text == "2"));
    a.on_action(Action::CopyWhat);
    let effects = a.on_action(Action::CopyRow);
    assert!(matches!(&effects[..], [Effect::Copy { text, .. }] if text == "a\tb\ny\t2"));
    a.on_effect_done(EffectOutcome::Exported {
        path: "/tmp/x/query-1.jsonl".into(),
        rows: 2,
    });
    assert!(a
        .message
        .as_ref()
        .unwrap()
        .0
        .ends_with("/tmp/x/query-1.jsonl"));
}

#[test]
fn keys_that_could_hurt_ask_while_work_runs() {
    let mut a = app();
    // Idle: q quits at once.
    a.on_action(Action::Quit);
    assert!(a.quit);
    let mut a = app();
    a.on_event(flushed(5, &[("GET /a", 5)]));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(40))])));
    assert!(a.work_running());
    a.on_action(Action::Quit);
    assert!(!a.quit);
    assert_eq!(a.key_mode(), Mode::ConfirmQuit);
    a.on_action(Action::Cancel);
    assert!(!a.quit, "n stays");
    a.on_action(Action::Quit);
    a.on_action(Action::Confirm);
    assert!(a.quit, "q again quits");
    // r while loading asks; y reloads.
    let mut a = app();
    a.on_event(flushed(5, &[("GET /a", 5)]));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(40))])));
    assert!(a.on_action(Action::Reload).is_empty());
    assert_eq!(a.overlay, Some(Overlay::Confirm(Pending::Reload)));
    let effects = a.on_action(Action::Confirm);
    assert!(matches!(commands(&effects)[..], [Command::Reload]));
    // Once the load settled, a lag sample that still shows the last commits on their way
    // does not count: r after "load done" just reloads.
    let mut a = app();
    a.on_event(flushed(5, &[("GET /a", 5)]));
    a.flushes.rows[0].at = jiff::Timestamp::now() - jiff::SignedDuration::from_millis(500);
    a.on_event(MonitorEvent::Pipeline(Event::Settled(Default::default())));
    a.on_event(MonitorEvent::Lag(Ok(vec![lag(0, Some(40))])));
    assert!(!a.work_running());
    assert!(matches!(
        commands(&a.on_action(Action::Reload))[..],
        [Command::Reload]
    ));
    // Ctrl-C quits from anywhere, even the editor.
    let mut a = app();
    a.focus = Pane::Query;
    a.on_action(Action::Type('q'));
    assert!(!a.quit, "q typed in the query pane is text");
    a.on_action(Action::QuitNow);
    assert!(a.quit);
}

#[test]
fn tab_and_digits_move_focus_and_pause_toggles() {
    let mut a = app();
    assert_eq!(a.focus, Pane::Transactions);
    a.on_action(Action::NextPane);
    assert_eq!(a.focus, Pane::Query);
    assert_eq!(a.key_mode(), Mode::QueryPane);
    a.on_action(Action::NextPane);
    assert_eq!(a.focus, Pane::Lag);
    a.on_action(Action::PrevPane);
    assert_eq!(a.focus, Pane::Query);
    a.focus = Pane::Lag;
    a.on_action(Action::Focus(1));
    assert_eq!(a.focus, Pane::Flushes);
    assert!(matches!(
        commands(&a.on_action(Action::TogglePause))[..],
        [Command::Pause(true)]
    ));
    a.on_event(MonitorEvent::Pipeline(Event::Paused(true)));
    assert!(matches!(
        commands(&a.on_action(Action::TogglePause))[..],
        [Command::Pause(false)]
    ));
}

#[test]
fn enter_opens_a_transaction_and_esc_drops_what_was_read() {
    let mut a = app();
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![("GET /a".into(), served(3)), ("GET /b".into(), served(2))],
        took: Duration::ZERO,
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    a.on_action(Action::Down);
    let effects = a.on_action(Action::Open);
    assert!(matches!(commands(&effects)[..], [Command::Inspect { name }] if name == "GET /b"));
    assert_eq!(a.key_mode(), Mode::Detail);
    // An answer for another transaction is not taken.
    a.on_event(MonitorEvent::Inspected {
        name: "GET /a".into(),
        detail: Err("x".into()),
    });
    assert!(a.detail.as_ref().unwrap().found.is_none());
    a.on_event(MonitorEvent::Inspected {
        name: "GET /b".into(),
        detail: Err("no such transaction on the topic".into()),
    });
    assert!(a.detail.as_ref().unwrap().found.is_some());
    a.on_action(Action::Cancel);
    assert!(a.detail.is_none());
    assert_eq!(a.key_mode(), Mode::Transactions);
}

#[test]
fn dead_letters_skip_only_an_unserved_message_and_ask_first() {
    let mut a = app();
    let effects = a.on_action(Action::DeadLetters);
    assert!(matches!(commands(&effects)[..], [Command::ListDeadLetters]));
    a.on_event(MonitorEvent::Pipeline(Event::Stuck(Stuck {
        partition: 2,
        offset: 7,
        high: 8,
        size: Some(6_000_000),
        waited_s: 120,
    })));
    a.on_event(MonitorEvent::DeadLetters(Ok(Vec::new())));
    assert_eq!(a.dead.len(), 1);
    assert!(a.on_action(Action::Skip).is_empty());
    assert_eq!(
        a.overlay,
        Some(Overlay::Confirm(Pending::Skip {
            partition: 2,
            offset: 7
        }))
    );
    let effects = a.on_action(Action::Confirm);
    assert!(matches!(
        commands(&effects)[..],
        [Command::Skip {
            partition: 2,
            offset: 7
        }]
    ));
    a.on_event(MonitorEvent::Skipped(Ok((2, 7))));
    assert_eq!(a.dead.len(), 0);
    // Nothing set aside: nothing to re-drive, nothing asked.
    a.on_action(Action::Redrive);
    assert_eq!(a.overlay, None);
}

#[test]
fn the_presets_read_the_window_of_the_last_fetch() {
    let mut a = App::new(AppConfig {
        table: "db.t".into(),
        window: "application_id = '31854' AND timestamp BETWEEN toDateTime(1) AND toDateTime(2)"
            .into(),
        application_id: "31854".into(),
        ..AppConfig::default()
    });
    a.on_event(MonitorEvent::Fetched {
        per_transaction: vec![("GET /z".into(), served(1))],
        took: Duration::ZERO,
        window: wmtop_core::config::Window {
            start_ms: 1_774_659_600_000,
            end_ms: 1_774_746_000_000,
        },
    });
    a.focus = Pane::Transactions;
    a.on_action(Action::Presets);
    let effects = a.on_action(Action::Preset(2));
    assert!(
        matches!(&commands(&effects)[..], [Command::Query { sql, .. }]
            if sql.contains("toDateTime(1774659600) AND toDateTime(1774746000)") && !sql.contains("toDateTime(1)")),
        "{:?}",
        commands(&effects)
    );
}

#[test]
fn the_schedule_counts_down_and_a_cycle_says_what_it_found() {
    use wmtop_core::config::Window;
    use wmtop_core::runtime::monitor::{Cycle, CycleVerdict, Trigger};
    let mut a = app();
    assert_eq!(a.next_reload_in(), None, "no schedule, no countdown");
    a.on_event(MonitorEvent::NextReload(Some(
        std::time::Instant::now() + Duration::from_secs(42),
    )));
    let left = a.next_reload_in().unwrap();
    assert!(left == "42s" || left == "41s", "{left}");
    // The countdown redraws the screen as it moves, and only then.
    a.dirty = false;
    a.tick();
    assert!(a.dirty, "the first tick draws the countdown");
    a.dirty = false;
    a.on_event(MonitorEvent::NextReload(Some(
        std::time::Instant::now() + Duration::from_secs(600),
    )));
    a.dirty = false;
    a.tick();
    assert!(a.dirty, "a new countdown is drawn");
    a.dirty = false;
    a.tick();
    assert!(
        !a.dirty,
        "ten minutes stay ten minutes within a second: {:?}",
        a.next_reload_in()
    );
    let hour = 3_600_000;
    let cycle = |verdict, error: Option<&str>| Cycle {
        number: 3,
        trigger: Trigger::Schedule,
        window: Window {
            start_ms: 0,
            end_ms: 24 * hour,
        },
        asked: Window {
            start_ms: 21 * hour,
            end_ms: 24 * hour,
        },
        incremental: true,
        transactions: 2,
        records: 8,
        bytes_fetched: 1,
        bytes_published: 1,
        messages_delivered: 2,
        new_rows: 2,
        revised_rows: 5,
        unchanged_rows: 1,
        set_aside: 0,
        verdict,
        error: error.map(str::to_string),
        took: Duration::from_millis(1500),
        ended_at: jiff::Timestamp::UNIX_EPOCH,
    };
    a.on_event(MonitorEvent::Cycle(cycle(CycleVerdict::Done, None)));
    assert_eq!(
        a.flushes.last_cycle.as_deref(),
        Some("reload 3 (since 01-01 21:00 UTC): 2 new, 5 revised, 1 unchanged rows, 1.5 s")
    );
    a.on_event(MonitorEvent::Cycle(cycle(
        CycleVerdict::Failed,
        Some("the API at x did not answer"),
    )));
    assert!(
        a.message
            .as_ref()
            .is_some_and(|(m, _)| m == "reload 3 failed: the API at x did not answer"),
        "{:?}",
        a.message
    );
}
