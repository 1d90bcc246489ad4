//! Landing a batch: its rows and dead letters go to ClickHouse in a task of its own
//! (with the one retry policy, until `max_wait`), while the next batch is read; once
//! ClickHouse has acknowledged them, the batch's offsets are committed, in order, and
//! the flush is reported.

use std::time::{Duration, Instant};

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::{mpsc, watch};

use super::batch::Batch;
use crate::clickhouse::{ChError, Inserted, Loader};
use crate::kafka::GroupConsumer;
use crate::load::events::{Event, Events};
use crate::net::retry::{wait_for_with, WaitError};

/// A batch handed to ClickHouse: the insert task, and what to commit and report after.
pub struct InFlight {
    /// The batch's number in the run (1, 2, …): what the task tells `done` when it ends.
    pub number: u64,
    pub task: tokio::task::JoinHandle<Result<Landed, WaitError<ChError>>>,
    pub batch: Batch,
    pub sent: Instant,
}

/// What ClickHouse took of a batch.
pub struct Landed {
    pub inserted: Inserted,
    pub dead_new: usize,
    pub retries: u32,
}

/// Starts inserting a batch's rows, then its dead letters; tells `done` its `number` when
/// finished.
pub fn send(
    loader: &Loader,
    mut batch: Batch,
    max_wait: Duration,
    events: &Events,
    number: u64,
    done: &mpsc::UnboundedSender<u64>,
) -> InFlight {
    let mut rows = std::mem::take(&mut batch.rows);
    rows.seal();
    let dead = std::mem::take(&mut batch.dead);
    let loader = loader.clone();
    let events = events.clone();
    let done = done.clone();
    let what = format!("ClickHouse at {}", loader.ch.url);
    let task = tokio::spawn(async move {
        // Inserts finish even while the run is stopping: that is the flush.
        let (_keep, never) = watch::channel(false);
        let mut retries = 0u32;
        let mut on_retry = |e: &ChError, attempt: u32, _: Duration| {
            retries = retries.max(attempt);
            events.send(Event::InsertRetry {
                attempt,
                error: e.to_string(),
            });
        };
        let inserted = wait_for_with(
            &what,
            Some(max_wait),
            &never,
            || loader.insert(&rows),
            &mut on_retry,
        )
        .await?;
        let dead_new = wait_for_with(
            &what,
            Some(max_wait),
            &never,
            || loader.insert_dead_letters(&dead),
            &mut on_retry,
        )
        .await?;
        let _ = done.send(number);
        Ok(Landed {
            inserted,
            dead_new,
            retries,
        })
    });
    InFlight {
        number,
        task,
        batch,
        sent: Instant::now(),
    }
}

/// Commits the offsets after a batch's last message, per partition. A failed commit
/// (the partition moved to another consumer) means those messages are read again, and
/// a re-read stores nothing twice.
pub fn commit(consumer: &GroupConsumer, topic: &str, batch: &Batch) -> bool {
    let mut tpl = TopicPartitionList::new();
    for (p, (_, last)) in &batch.offsets {
        if let Err(e) = tpl.add_partition_offset(topic, *p, Offset::Offset(last + 1)) {
            tracing::warn!("cannot commit partition {p}: {e}");
        }
    }
    match consumer.commit(&tpl, CommitMode::Sync) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(
                "offset commit failed (messages will be read again, not stored twice): {e}"
            );
            false
        }
    }
}

/// The flush event for a landed batch.
pub fn flushed(batch: Batch, landed: &Landed, took: Duration) -> Event {
    Event::Flushed {
        rows: landed.inserted.rows,
        unchanged: landed.inserted.unchanged,
        replaced: landed.inserted.replaced,
        messages: batch.messages,
        bytes: batch.bytes,
        dead_letters: landed.dead_new,
        took,
        retries: landed.retries,
        offsets: batch
            .offsets
            .iter()
            .map(|(p, (a, b))| (*p, *a, *b))
            .collect(),
        per_transaction: batch.per_transaction.into_iter().collect(),
    }
}
