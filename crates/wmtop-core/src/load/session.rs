//! One consume run's state and the steps the loop takes with it: taking a message into
//! the batch, handing the batch to ClickHouse ([`super::land`]) and committing it once
//! landed, settling what was written, reporting partitions the broker does not
//! serve, and following the assignment (with pause and resume).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio::sync::{mpsc, watch};

use super::batch::{Batch, Flat};
use super::drift::DriftWatch;
use super::events::{Event, Events, Stuck};
use super::land::{self, InFlight};
use super::summary::{ConsumeSummary, End};
use super::verdict::{Look, WaitedFor};
use crate::clickhouse::{Loader, Settled, Written};
use crate::config::Settings;
use crate::kafka::{GroupConsumer, Kafka};
use crate::net::retry::WaitError;

/// One run's state: what it reads with, what it has gathered and sent, and what it has
/// reported.
pub(super) struct Session<'a> {
    pub(super) settings: &'a Settings,
    pub(super) loader: Loader,
    pub(super) kafka: Kafka,
    pub(super) consumer: Arc<GroupConsumer>,
    pub(super) events: Events,
    pub(super) batch: Batch,
    pub(super) summary: ConsumeSummary,
    pub(super) drift: DriftWatch,
    /// Months written to since the last settle.
    /// What the load wrote since it last settled.
    pub(super) written: Written,
    /// A batch landed since the last settle (the load is not reported done yet).
    pub(super) unsettled: bool,
    pub(super) in_flight: Option<InFlight>,
    /// Told the number of each batch whose insert ended, so its commit does not wait for
    /// the next. A flush may have landed that batch already: the word then comes late.
    pub(super) done: mpsc::UnboundedSender<u64>,
    /// Batches handed to ClickHouse so far (the number of the last one sent).
    pub(super) batches_sent: u64,
    pub(super) started: Instant,
    /// Partitions reported stuck, at which offset.
    pub(super) stuck: BTreeMap<i32, i64>,
}

impl Session<'_> {
    /// Takes one flattened message into the batch, reporting what was set aside and any
    /// drift.
    pub(super) fn take(&mut self, flat: Flat) {
        let (partition, offset) = (flat.partition, flat.offset);
        let taken = self.batch.add(&self.settings.topic, flat);
        self.summary.messages += 1;
        match &taken.outcome {
            Err(e) => {
                self.summary.bad_messages += 1;
                tracing::warn!(partition, offset, transaction = %taken.transaction, "message set aside: {e}");
                self.events.send(Event::DeadLettered {
                    partition,
                    offset,
                    transaction: taken.transaction.clone(),
                    whole_message: true,
                    reason: e.to_string(),
                });
            }
            Ok(f) => {
                self.summary.records += f.records as u64;
                for bad in &f.bad_records {
                    self.summary.bad_records += 1;
                    tracing::warn!(partition, offset, transaction = %taken.transaction, "record set aside: {}", bad.reason);
                    self.events.send(Event::DeadLettered {
                        partition,
                        offset,
                        transaction: taken.transaction.clone(),
                        whole_message: false,
                        reason: bad.reason.clone(),
                    });
                }
                if let Some(d) = self.drift.note(f, partition, offset) {
                    tracing::warn!(
                        partition,
                        offset,
                        "schema drift: new fields without a column: [{}]; fields no longer sent: [{}]",
                        d.added.join(", "),
                        d.missing.join(", ")
                    );
                    self.summary.schema_drift.push(d.clone());
                    self.events.send(Event::SchemaDrift(d));
                }
            }
        }
        if self.stuck.get(&partition).is_some_and(|o| offset >= *o) {
            self.stuck.remove(&partition);
            self.events.send(Event::Unstuck { partition });
        }
    }

    /// Hands the batch to ClickHouse (after the one before it has landed), so the next
    /// batch is read while this one is inserted.
    pub(super) async fn flush(&mut self, max_wait: Duration) -> Result<(), End> {
        self.land().await?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        self.batches_sent += 1;
        self.in_flight = Some(land::send(
            &self.loader,
            batch,
            max_wait,
            &self.events,
            self.batches_sent,
            &self.done,
        ));
        Ok(())
    }

    /// Waits for the batch in flight, then commits its offsets and reports it.
    pub(super) async fn land(&mut self) -> Result<(), End> {
        let Some(InFlight {
            task, batch, sent, ..
        }) = self.in_flight.take()
        else {
            return Ok(());
        };
        let url = self.loader.ch.url.clone();
        let landed = task
            .await
            .map_err(|e| {
                End::failed(format!(
                    "the insert task failed (offsets not committed, nothing lost): {e}"
                ))
            })?
            .map_err(|e| End::from_clickhouse(e, &url))?;
        if land::commit(&self.consumer, &self.settings.topic, &batch) {
            self.summary.commits += 1;
            self.summary.loaded_ms = self.started.elapsed().as_millis() as u64;
        }
        self.written.extend(&landed.inserted.written);
        self.unsettled = true;
        self.summary.batches += 1;
        self.summary.rows_inserted += landed.inserted.rows as u64;
        self.summary.rows_unchanged += landed.inserted.unchanged as u64;
        self.summary.rows_replaced += landed.inserted.replaced as u64;
        self.summary.insert_retries += u64::from(landed.retries);
        let took = sent.elapsed();
        tracing::info!(
            rows = landed.inserted.rows,
            unchanged = landed.inserted.unchanged,
            dead = landed.dead_new,
            ?took,
            "batch landed"
        );
        self.events.send(land::flushed(batch, &landed, took));
        Ok(())
    }

    /// Merges the partitions that hold copies of what the load wrote, checks none is
    /// left, and reports the load done.
    pub(super) async fn settle(&mut self) -> Result<(), End> {
        self.unsettled = false;
        let written = std::mem::take(&mut self.written);
        self.events.send(Event::Settling {
            transactions: written.transactions.len(),
        });
        let url = self.loader.ch.url.clone();
        let settled = self
            .loader
            .settle(&written, self.settings.max_wait.0)
            .await
            .map_err(|e| End::from_clickhouse(WaitError::Permanent(e), &url))?;
        if settled.copies_left > 0 {
            tracing::warn!(
                "{} stored copies are left among the {} transactions loaded ({})",
                settled.copies_left,
                written.transactions.len(),
                if self.loader.info.replacing() {
                    "the merge did not finish within max_wait"
                } else {
                    "the table does not merge them away"
                }
            );
        } else if !settled.merged.is_empty() {
            tracing::info!("merged partitions {:?}: no copy left", settled.merged);
        }
        self.events.send(Event::Settled(settled.clone()));
        let total = self.summary.settled.get_or_insert_with(Settled::default);
        total.merged.extend(settled.merged);
        total.copies_left = settled.copies_left;
        total.took_ms += settled.took_ms;
        Ok(())
    }

    /// Reports messages the broker does not serve; ends a run that waits to be done.
    pub(super) fn note_stuck(&mut self, look: &Look, ending: bool) -> Option<End> {
        // A broker answer refused for its size is why a partition stands still.
        let size = self.kafka.oversized();
        let why = size.map_or(String::new(), |n| {
            format!(
                " (the broker's answer, {n} bytes, is more than this consumer receives: raise \
                 receive.message.max.bytes and fetch.max.bytes with -X, or skip it)"
            )
        });
        for s in &look.stuck {
            if self.stuck.get(&s.partition) == Some(&s.offset) {
                continue;
            }
            tracing::error!(
                "partition {} is blocked: the broker has not served the message at offset {} (high watermark {}) for {}s{why}; \
                 skip it with `wmtop dead-letters --skip {}:{}`",
                s.partition, s.offset, s.high, s.waited_s, s.partition, s.offset
            );
            let stuck = Stuck {
                size: s.size.or(size),
                ..s.clone()
            };
            self.stuck.insert(s.partition, s.offset);
            self.summary.stuck.push(stuck.clone());
            self.events.send(Event::Stuck(stuck));
        }
        let first = look.stuck.first()?;
        if !ending {
            return None;
        }
        Some(End::gave_up(
            WaitedFor {
                what: "message",
                server: self.settings.kafka_brokers.clone(),
                partition: Some(first.partition),
                offset: Some(first.offset),
                high: Some(first.high),
                size: first.size.or(size),
                waited_s: first.waited_s,
                reason: format!(
                    "the broker has not served partition {} offset {} for {}s{why}; `wmtop dead-letters --skip {}:{}` sets it aside and moves the group past it",
                    first.partition, first.offset, first.waited_s, first.partition, first.offset
                ),
            },
            format!(
                "partition {} is blocked at offset {}: the broker does not serve that message",
                first.partition, first.offset
            ),
        ))
    }

    /// Reports assignment changes and applies pause/resume to what is held; returns
    /// the partitions held.
    pub(super) fn watch_assignment(
        &mut self,
        held: &mut Option<Vec<i32>>,
        paused: &mut bool,
        pause: Option<&watch::Receiver<bool>>,
    ) -> Vec<i32> {
        let Ok(assignment) = self.consumer.assignment() else {
            return held.clone().unwrap_or_default();
        };
        let parts: Vec<i32> = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
        let changed = held.as_ref() != Some(&parts);
        if changed {
            tracing::info!("partitions held: {parts:?}");
            *held = Some(parts.clone());
            self.events.send(Event::Assigned {
                partitions: parts.clone(),
            });
        }
        let want = pause.is_some_and(|p| *p.borrow());
        if want != *paused || (want && changed) {
            let result = if want {
                self.consumer.pause(&assignment)
            } else {
                self.consumer.resume(&assignment)
            };
            match result {
                Ok(()) => {
                    *paused = want;
                    self.events.send(Event::Paused(want));
                }
                Err(e) => tracing::warn!(
                    "could not {} the consumer: {e}",
                    if want { "pause" } else { "resume" }
                ),
            }
        }
        parts
    }
}
