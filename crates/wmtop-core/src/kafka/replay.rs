//! Moving the group's committed offsets: a replay (back to the beginning, or to the
//! first message at or after a time) and a skip (past one message the broker will not
//! serve). Offsets are committed by a client that never joins the group, so the group's
//! own consumers must be stopped first: a group that still has live members, as the
//! broker describes them, is refused with a sentence naming them.

use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::client::{Kafka, KafkaOpError};
use super::lag;

/// Where a replay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The first message still on the topic.
    Beginning,
    /// The first message whose Kafka time is at or after this time (epoch ms).
    Time(i64),
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

/// A live member of the group, as the broker describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub client_id: String,
    pub host: String,
    pub member_id: String,
}

/// The group's live members as the broker describes them. Blocking.
pub fn members(kafka: &Kafka) -> Result<Vec<Member>, KafkaOpError> {
    let group = kafka.settings().group.clone();
    let client = kafka.offsets()?;
    let list = client
        .client()
        .fetch_group_list(Some(&group), Duration::from_secs(10))
        .map_err(kafka.op("describe the consumer group"))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| Member {
            client_id: m.client_id().to_string(),
            host: m.client_host().trim_start_matches('/').to_string(),
            member_id: m.id().to_string(),
        })
        .collect())
}

/// Refuses when the group has live members; names them.
fn no_live_members(kafka: &Kafka, what: &str) -> Result<(), KafkaOpError> {
    let live = match members(kafka) {
        Ok(m) => m,
        Err(e) if kafka.quirks().cannot_describe_groups() => {
            // The local broker drops the connection on DescribeGroups: it cannot say.
            tracing::debug!("the local broker could not describe group members: {e}");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    refuse_live(&kafka.settings().group, what, &live)
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
            },
            Member {
                client_id: "loader".into(),
                host: "10.0.0.8".into(),
                member_id: "loader-9a".into(),
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
