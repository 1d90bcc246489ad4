//! The frame-draw benchmark: the monitor with every pane full (122 transactions, a full
//! flush list and sparklines, four partitions, a 60-row query result) drawn again and
//! again through the real crossterm backend into a sink, with the state moving between
//! frames as it does while loading, so each frame has a real diff to write.

use std::time::{Duration, Instant};

use ratatui::backend::CrosstermBackend;
use ratatui::layout::Rect;
use ratatui::{Terminal, TerminalOptions, Viewport};
use wmtop_core::clickhouse::{QueryResult, Stored};
use wmtop_core::kafka::sampler::Holder;
use wmtop_core::kafka::PartitionLag;
use wmtop_core::load::events::Event;
use wmtop_core::runtime::monitor::{LagRow, MonitorEvent, Stage, StageState};
use wmtop_core::source::api::Accounting;

use super::state::{App, AppConfig};
use super::ui::{self, Theme};

/// Draw time of each of `frames` frames at `width`×`height`.
pub fn draw_times(width: u16, height: u16, frames: usize) -> anyhow::Result<Vec<Duration>> {
    let mut app = App::new(AppConfig {
        table: "watermelon.transaction_metrics".into(),
        log_path: std::env::temp_dir().join("wmtop-bench-never-written.log"),
        ..AppConfig::default()
    });
    // The state says what it does in the log; a benchmark's output is its figures.
    let _quiet = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    fill(&mut app);
    let theme = Theme {
        color: true,
        ascii: false,
    };
    let mut terminal = Terminal::with_options(
        CrosstermBackend::new(std::io::sink()),
        TerminalOptions {
            viewport: Viewport::Fixed(Rect::new(0, 0, width, height)),
        },
    )?;
    let mut times = Vec::with_capacity(frames);
    for i in 0..frames {
        step(&mut app, i);
        let started = Instant::now();
        terminal.draw(|f| ui::draw(&app, theme, f))?;
        times.push(started.elapsed());
    }
    Ok(times)
}

fn name(i: usize) -> String {
    format!("GET /api/v2/service-{i:03}/orders")
}

fn fill(app: &mut App) {
    for stage in [Stage::Keycloak, Stage::Api, Stage::Kafka, Stage::ClickHouse] {
        app.on_event(MonitorEvent::Stage {
            stage,
            state: StageState::Ok,
            error: None,
        });
    }
    app.on_event(MonitorEvent::ConsumerRunning(true));
    let per: Vec<(String, u64)> = (0..122).map(|i| (name(i), 218 + (i as u64 % 70))).collect();
    app.on_event(MonitorEvent::Fetched {
        per_transaction: per
            .iter()
            .map(|(n, r)| {
                (
                    n.clone(),
                    Accounting {
                        served: *r,
                        set_aside: 0,
                    },
                )
            })
            .collect(),
        took: Duration::from_millis(600),
        window: wmtop_core::config::Window {
            start_ms: 1_767_205_800_000,
            end_ms: 1_768_242_540_000,
        },
    });
    app.on_event(MonitorEvent::Published {
        per_transaction: per.iter().map(|(n, _)| (n.clone(), 1)).collect(),
        delivered: per.len(),
        failed: 0,
        took: Duration::from_millis(300),
    });
    app.on_event(MonitorEvent::Pipeline(Event::Assigned {
        partitions: vec![0, 1, 2, 3],
    }));
    app.on_event(MonitorEvent::Counts(
        per.iter()
            .map(|(n, r)| {
                (
                    n.clone(),
                    Stored {
                        rows: *r,
                        distinct: *r,
                    },
                )
            })
            .collect(),
    ));
    app.query.result = Some(QueryResult {
        columns: [
            "transaction_name",
            "rows",
            "avg_error_rate",
            "p95",
            "breaches",
            "health",
        ]
        .map(String::from)
        .to_vec(),
        types: ["String", "UInt64", "Float64", "Float64", "UInt64", "String"]
            .map(String::from)
            .to_vec(),
        rows: (0..60)
            .map(|i| {
                vec![
                    serde_json::json!(name(i)),
                    serde_json::json!(218 + i % 70),
                    serde_json::json!((i as f64 / 7.0 * 1000.0).round() / 1000.0),
                    serde_json::json!(120.0 + i as f64),
                    serde_json::json!(i % 5),
                    serde_json::json!(["HEALTHY", "WARNING", "CRITICAL"][i % 3]),
                ]
            })
            .collect(),
    });
    app.query.took = Some(Duration::from_millis(12));
    for i in 0..200 {
        step(app, i);
    }
}

/// What changes between two frames while loading: a flush, a lag sample, the clock.
fn step(app: &mut App, i: usize) {
    let tx = name(i % 122);
    app.on_event(MonitorEvent::Pipeline(Event::Flushed {
        rows: 5_000 + i % 300,
        unchanged: 0,
        replaced: 0,
        messages: 20,
        bytes: 10_000_000,
        dead_letters: 0,
        took: Duration::from_millis(60 + (i % 50) as u64),
        retries: 0,
        offsets: vec![
            (0, i as i64, i as i64 + 5),
            (1, i as i64, i as i64 + 5),
            (2, i as i64, i as i64 + 5),
        ],
        per_transaction: vec![(tx, 288)],
    }));
    app.on_event(MonitorEvent::Lag(Ok((0..4)
        .map(|p| LagRow {
            lag: PartitionLag {
                partition: p,
                committed: Some(i as i64),
                low: 0,
                high: i as i64 + (i as i64 * (p as i64 + 1)) % 40,
                lag: Some((i as i64 * (p as i64 + 1)) % 40),
            },
            oldest_age: Some(Duration::from_secs((i % 90) as u64)),
            holder: Holder::This,
            replicas: None,
        })
        .collect())));
    app.tick();
}
