//! Moving the group's committed offsets: a replay (back to the beginning, or to the
//! first message at or after a time) and a skip (past one message the broker will not
//! serve). Offsets are committed by a client that never joins the group, so the group's
//! own consumers must be stopped first: a group that still has live members, as the
//! broker describes them, is refused with a sentence naming them.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{Kafka, KafkaOpError};
use super::group::{self, Member};
use super::lag;

/// Where a replay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The first message still on the topic.
    Beginning,
    /// The first message whose Kafka time is at or after this time (epoch ms).
    Time(i64),
    /// The first message whose records reach this time's hour (epoch ms): a record of
    /// that hour or later. Found by reading each partition from its start.
    DataTime(i64),
}

/// One partition of a replay: where the group stands and where it will start again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReplayPart {
    pub partition: i32,
    pub committed: Option<i64>,
    pub target: i64,
    pub high: i64,
}

impl ReplayPart {
    /// Messages the replay will read on this partition.
    pub fn messages(&self) -> i64 {
        (self.high - self.target).max(0)
    }
}

/// Works out where a replay starts on each partition, without moving anything. Blocking.
pub fn plan(kafka: &Kafka, from: ReplayFrom) -> Result<Vec<ReplayPart>, KafkaOpError> {
    let topic = kafka.settings().topic.clone();
    let client = kafka.offsets()?;
    let positions = lag::read(kafka, &client)?;
    let mut out = Vec::with_capacity(positions.len());
    let found = match from {
        ReplayFrom::Beginning => None,
        ReplayFrom::DataTime(ms) => {
            let first = first_reaching(kafka, &positions, ms)?;
            let mut tpl = TopicPartitionList::new();
            for p in &positions {
                let at = first.get(&p.partition).copied().unwrap_or(p.high);
                tpl.add_partition_offset(&topic, p.partition, Offset::Offset(at))
                    .map_err(kafka.op("build partition list"))?;
            }
            Some(tpl)
        }
        ReplayFrom::Time(ms) => {
            let mut tpl = TopicPartitionList::new();
            for p in &positions {
                tpl.add_partition_offset(&topic, p.partition, Offset::Offset(ms))
                    .map_err(kafka.op("build partition list"))?;
            }
            Some(
                client
                    .offsets_for_times(tpl, Duration::from_secs(10))
                    .map_err(kafka.op("find offsets for the time"))?,
            )
        }
    };
    for p in positions {
        let target = match &found {
            None => p.low,
            Some(tpl) => match tpl.find_partition(&topic, p.partition).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                // No message at or after the time: nothing to re-read there.
                _ => p.high,
            },
        };
        out.push(ReplayPart {
            partition: p.partition,
            committed: p.committed,
            target,
            high: p.high,
        });
    }
    out.sort_by_key(|p| p.partition);
    Ok(out)
}

/// Per partition, the first offset whose message has a record at or after `ms`'s
/// hour; partitions without one are left out. Reads forward from each partition's start
/// a growing chunk at a time, stopping where it is found. Blocking.
fn first_reaching(
    kafka: &Kafka,
    positions: &[lag::PartitionLag],
    ms: i64,
) -> Result<std::collections::BTreeMap<i32, i64>, KafkaOpError> {
    use rdkafka::message::Message;
    let hour = ms - ms.rem_euclid(3_600_000);
    let reaches = |payload: &[u8]| {
        let mut latest = i64::MIN;
        let _ = crate::record::flatten::flatten_each(payload, |row| {
            latest = latest.max(row.timestamp.millis());
        });
        latest >= hour
    };
    let client = kafka.reader()?;
    let mut next: std::collections::BTreeMap<i32, (i64, i64)> = positions
        .iter()
        .map(|p| (p.partition, (p.low, p.high)))
        .collect();
    let mut found = std::collections::BTreeMap::new();
    let mut chunk = 8;
    loop {
        let ranges: Vec<(i32, i64, i64)> = next
            .iter()
            .filter(|(p, (at, high))| at < high && !found.contains_key(*p))
            .map(|(p, (at, high))| (*p, *at, (*at + chunk).min(*high)))
            .collect();
        if ranges.is_empty() {
            return Ok(found);
        }
        let stall = kafka.settings().max_wait.0.min(Duration::from_secs(30));
        super::reader::read_ranges(kafka, &client, &ranges, stall, |m| {
            if !found.contains_key(&m.partition()) && reaches(m.payload().unwrap_or_default()) {
                found.insert(m.partition(), m.offset());
            }
        })
        .map_err(|e| match e {
            super::reader::ReadError::Kafka(k) => k,
            super::reader::ReadError::Stalled(s) => {
                KafkaOpError::Refused(format!("finding where the data time starts: {s}"))
            }
        })?;
        for (p, _, to) in ranges {
            if let Some(n) = next.get_mut(&p) {
                n.0 = to;
            }
        }
        chunk = (chunk * 2).min(256);
    }
}

/// Refuses when the group has live members, as the broker describes them; names them.
/// Blocking.
pub fn no_live_members(kafka: &Kafka, what: &str) -> Result<(), KafkaOpError> {
    let client = kafka.offsets()?;
    let group = group::describe(kafka, &client, Duration::from_secs(10))?;
    refuse_live(&kafka.settings().group, what, &group.members)
}

/// Refuses when `live` is not empty, naming every member.
fn refuse_live(group: &str, what: &str, live: &[Member]) -> Result<(), KafkaOpError> {
    if live.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = live
        .iter()
        .map(|m| format!("{} at {} ({})", m.client_id, m.host, m.member_id))
        .collect();
    Err(KafkaOpError::Refused(format!(
        "{what} refused: consumer group {group} has {} live member{}: {}. Stop {} first; moving offsets under a running consumer would be undone by its next commit",
        live.len(),
        if live.len() == 1 { "" } else { "s" },
        names.join(", "),
        if live.len() == 1 { "it" } else { "them" }
    )))
}

fn commit(kafka: &Kafka, offsets: &[(i32, i64)]) -> Result<(), KafkaOpError> {
    let topic = kafka.settings().topic.clone();
    let client = kafka.offsets()?;
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(&topic, *p, Offset::Offset(*o))
            .map_err(kafka.op("build partition list"))?;
    }
    client.assign(&tpl).map_err(kafka.op("assign partitions"))?;
    client
        .commit(&tpl, CommitMode::Sync)
        .map_err(kafka.op("commit offsets"))
}

/// Commits a replay plan's targets for the group. Blocking.
pub fn apply(kafka: &Kafka, plan: &[ReplayPart]) -> Result<(), KafkaOpError> {
    no_live_members(kafka, "the replay")?;
    let offsets: Vec<(i32, i64)> = plan.iter().map(|p| (p.partition, p.target)).collect();
    commit(kafka, &offsets)
}

/// Moves the group past the message at `offset` of `partition`. Blocking.
pub fn skip(kafka: &Kafka, partition: i32, offset: i64) -> Result<(), KafkaOpError> {
    no_live_members(kafka, "the skip")?;
    commit(kafka, &[(partition, offset + 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_with_live_members_is_refused_naming_them() {
        assert!(refuse_live("g", "the replay", &[]).is_ok());
        let live = [
            Member {
                client_id: "wmtop".into(),
                host: "10.0.0.7".into(),
                member_id: "wmtop-1f2e".into(),
                partitions: vec![0],
            },
            Member {
                client_id: "loader".into(),
                host: "10.0.0.8".into(),
                member_id: "loader-9a".into(),
                partitions: vec![],
            },
        ];
        let err = refuse_live("g", "the replay", &live).unwrap_err();
        assert!(err.permanent());
        assert_eq!(
            err.to_string(),
            "the replay refused: consumer group g has 2 live members: wmtop at 10.0.0.7 (wmtop-1f2e), \
             loader at 10.0.0.8 (loader-9a). Stop them first; moving offsets under a running consumer \
             would be undone by its next commit"
        );
    }
}
