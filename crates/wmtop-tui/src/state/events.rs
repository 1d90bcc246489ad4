//! Monitor events applied to the state: each goes to the pane or view it concerns.
//! Periodic samples (stage states, lag) mark the screen for redrawing only when they
//! change what is shown.

use wmtop_core::load::events::Event;
use wmtop_core::runtime::monitor::MonitorEvent;

use super::{App, FlushRow, Overlay};

impl App {
    /// Applies a pipeline event.
    pub fn on_event(&mut self, e: MonitorEvent) {
        match e {
            MonitorEvent::Stage {
                stage,
                state,
                error,
            } => {
                if self.status.on_stage(stage, state, error) {
                    self.dirty = true;
                }
            }
            MonitorEvent::Lag(sample) => {
                if self.lag.on_sample(sample) {
                    self.dirty = true;
                }
            }
            MonitorEvent::Replicas(rows) => {
                if self.replicas.on_sample(rows) {
                    self.dirty = true;
                }
            }
            other => {
                self.dirty = true;
                self.on_news(other);
            }
        }
    }

    /// A reload's cycle ended: one line for the flushes pane, and a message when it
    /// did not land.
    fn on_cycle(&mut self, c: &wmtop_core::runtime::monitor::Cycle) {
        let what = if c.incremental {
            let from = jiff::Timestamp::from_millisecond(c.asked.start_ms).map_or_else(
                |_| c.asked.start_ms.to_string(),
                |t| t.strftime("%m-%d %H:%M").to_string(),
            );
            format!("since {from} UTC")
        } else {
            "whole window".to_string()
        };
        let line = format!(
            "reload {} ({what}): {} new, {} revised, {} unchanged rows, {:.1} s",
            c.number,
            c.new_rows,
            c.revised_rows,
            c.unchanged_rows,
            c.took.as_secs_f64()
        );
        if let Some(e) = &c.error {
            self.say(format!("reload {} {}: {e}", c.number, c.verdict.name()));
        }
        self.flushes.last_cycle = Some(line);
    }

    /// A fetch finished: its accounting, and the window it asked for.
    fn on_fetched(
        &mut self,
        per_transaction: Vec<(String, wmtop_core::source::api::Accounting)>,
        took: std::time::Duration,
        window: wmtop_core::config::Window,
    ) {
        // A window that moves with the clock moves the presets' rows with it.
        self.status.window = Some(window);
        if !self.application_id.is_empty() {
            self.window = wmtop_core::clickhouse::sql::window_condition(
                &self.application_id,
                window.start_ms.div_euclid(1000),
                window.end_ms.div_euclid(1000),
            );
        }
        self.flushes.totals.fetches += 1;
        let n = per_transaction.len();
        self.txs.on_fetched(per_transaction);
        self.say(format!(
            "fetched {n} transactions in {:.1} s",
            took.as_secs_f64()
        ));
    }

    fn on_news(&mut self, e: MonitorEvent) {
        match e {
            MonitorEvent::Stage { .. } | MonitorEvent::Lag(_) | MonitorEvent::Replicas(_) => {}
            MonitorEvent::Source { simulator } => self.status.simulator = simulator,
            MonitorEvent::TokenExpiry(at) => self.status.token_expiry = at,
            MonitorEvent::Reloading(on) => self.status.reloading = on,
            MonitorEvent::NextReload(at) => self.status.next_reload = at,
            MonitorEvent::Cycle(c) => self.on_cycle(&c),
            MonitorEvent::Fetched {
                per_transaction,
                took,
                window,
            } => self.on_fetched(per_transaction, took, window),
            MonitorEvent::Published {
                per_transaction,
                delivered,
                failed,
                took,
            } => {
                self.flushes.totals.published += delivered as u64;
                self.txs.on_published(per_transaction);
                if failed > 0 {
                    self.say(format!(
                        "publish: {failed} messages NOT delivered, {delivered} delivered"
                    ));
                } else {
                    self.say(format!(
                        "published {delivered} messages in {:.2} s",
                        took.as_secs_f64()
                    ));
                }
            }
            MonitorEvent::Pipeline(ev) => self.on_pipeline(ev),
            MonitorEvent::ConsumerRunning(on) => self.status.consumer_running = on,
            MonitorEvent::Counts(counts) => self.txs.on_counts(counts),
            MonitorEvent::Skipped(r) => match r {
                Ok((p, o)) => {
                    self.status.stuck.remove(&p);
                    self.sync_unserved();
                    self.say(format!(
                        "skipped partition {p} offset {o}: recorded as a dead letter, group moved past it"
                    ));
                }
                Err(e) => self.say(format!("skip refused: {e}")),
            },
            MonitorEvent::ReplayPlan(plan) => {
                if self.overlay == Some(Overlay::ReplayConfirm) {
                    self.replay.plan = Some(plan);
                }
            }
            MonitorEvent::Replayed(r) => match r {
                Ok(n) => {
                    self.replay.running = true;
                    self.say(format!("replay started: re-reading {n} messages"));
                }
                Err(e) => self.say(format!("replay failed: {e}")),
            },
            MonitorEvent::Checked(report) => {
                match &report {
                    Ok(r) => self.say(format!(
                        "verify: {} gaps, {} stored copies, {} extra rows over {} transactions{}",
                        r.totals.counts.gaps,
                        r.totals.counts.copies,
                        r.totals.counts.extras,
                        r.transactions.len(),
                        if r.ok() { " - ok" } else { "" }
                    )),
                    Err(e) => self.say(format!("verify failed: {e}")),
                }
                self.txs.on_checked(report);
            }
            MonitorEvent::QueryDone { id, result, took } => {
                self.query.on_done(id, result, took);
            }
            MonitorEvent::Inspected { name, detail } => {
                if let Some(d) = self.detail.as_mut().filter(|d| d.name == name) {
                    d.on_inspected(detail);
                }
            }
            MonitorEvent::DeadLetters(list) => self.dead.on_listed(list),
            MonitorEvent::Redriven(r) => match r {
                Ok(r) => {
                    self.say(format!(
                        "re-drive: {} letters, {} messages published again, {} letters removed, {} kept (never served)",
                        r.letters, r.republished, r.removed, r.kept
                    ));
                    self.dead.loading = true;
                }
                Err(e) => self.say(format!("re-drive failed: {e}")),
            },
        }
    }

    fn on_pipeline(&mut self, ev: Event) {
        match ev {
            Event::Flushed {
                rows,
                unchanged,
                replaced,
                messages: _,
                bytes,
                dead_letters,
                took,
                retries,
                offsets,
                per_transaction,
            } => {
                self.txs.on_loaded(per_transaction);
                self.flushes.on_flushed(FlushRow {
                    at: jiff::Timestamp::now(),
                    rows,
                    unchanged,
                    revised: replaced,
                    bytes,
                    took,
                    offsets,
                    retries,
                    dead_letters,
                });
            }
            Event::InsertRetry { attempt, error } => {
                self.flushes.retrying = Some((attempt, error));
            }
            Event::DeadLettered { .. } => {}
            Event::SchemaDrift(d) => {
                let mut parts = Vec::new();
                if !d.added.is_empty() {
                    parts.push(format!(
                        "new fields without a column: {}",
                        d.added.join(", ")
                    ));
                }
                if !d.missing.is_empty() {
                    parts.push(format!("fields no longer sent: {}", d.missing.join(", ")));
                }
                self.say(format!(
                    "schema drift since {}: {}",
                    d.since,
                    parts.join("; ")
                ));
                self.unknown_fields.extend(d.added);
            }
            Event::Assigned { partitions } => self.lag.assigned = partitions,
            Event::Paused(p) => self.status.paused = p,
            Event::Stuck(s) => {
                self.say(format!(
                    "partition {} is blocked: the broker does not serve offset {} (d: dead letters, to skip it)",
                    s.partition, s.offset
                ));
                self.status.stuck.insert(s.partition, s);
                self.sync_unserved();
            }
            Event::Unstuck { partition } => {
                self.status.stuck.remove(&partition);
                self.sync_unserved();
            }
            Event::Settling { transactions } => self.status.merging = Some(transactions),
            Event::Settled(settled) => {
                self.status.merging = None;
                self.replay.running = false;
                self.status.settled_at = Some(jiff::Timestamp::now());
                if settled.copies_left > 0 {
                    self.say(format!(
                        "{} stored copies are left (the table does not merge them away)",
                        settled.copies_left
                    ));
                }
            }
        }
    }

    /// The dead-letter view lists what the consumer reports blocked.
    fn sync_unserved(&mut self) {
        self.dead.unserved = self.status.stuck.values().cloned().collect();
    }
}
