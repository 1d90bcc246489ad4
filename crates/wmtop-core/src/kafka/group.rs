//! The consumer group as the broker describes it: its state and its members, each with
//! its client id, host and the partitions of the topic it holds (decoded from the
//! assignment the broker keeps for it). The lag sampler reads it to say who holds each
//! partition; a replay or skip reads it to refuse while a member is live.

use std::time::Duration;

use rdkafka::consumer::Consumer;

use super::client::{Kafka, KafkaOpError};
use super::context::KafkaContext;

/// One member of the group.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    pub client_id: String,
    /// The address the broker saw it connect from.
    pub host: String,
    pub member_id: String,
    /// The topic's partitions it was assigned (empty while the group rebalances).
    pub partitions: Vec<i32>,
}

/// The group: the broker's word for its state, and its members.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`, `Dead`, or
    /// whatever a broker says.
    pub state: String,
    pub members: Vec<Member>,
}

impl Group {
    /// Members are joining or leaving: the assignments the broker holds are not the
    /// ones in force.
    pub fn rebalancing(&self) -> bool {
        matches!(
            self.state.as_str(),
            "PreparingRebalance" | "CompletingRebalance"
        )
    }

    /// The member holding `partition`, if one does (as of the last completed
    /// rebalance).
    pub fn holder(&self, partition: i32) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.partitions.contains(&partition))
    }
}

/// The group of the settings, as the broker describes it. Blocking.
pub fn describe<C: Consumer<KafkaContext>>(
    kafka: &Kafka,
    client: &C,
    timeout: Duration,
) -> Result<Group, KafkaOpError> {
    let s = kafka.settings();
    let list = client
        .fetch_group_list(Some(&s.group), timeout)
        .map_err(kafka.op("describe the consumer group"))?;
    let Some(g) = list.groups().iter().find(|g| g.name() == s.group) else {
        return Ok(Group::default());
    };
    Ok(Group {
        state: g.state().to_string(),
        members: g
            .members()
            .iter()
            .map(|m| Member {
                client_id: m.client_id().to_string(),
                host: m.client_host().trim_start_matches('/').to_string(),
                member_id: m.id().to_string(),
                partitions: m
                    .assignment()
                    .and_then(|a| assigned_partitions(a, &s.topic))
                    .unwrap_or_default(),
            })
            .collect(),
    })
}

/// The partitions of `topic` in a consumer-protocol assignment (versions 0 to 3: an
/// int16 version, then an array of topics, each a string and an array of int32
/// partitions; user data follows and is not read). None when the bytes are not one.
pub fn assigned_partitions(bytes: &[u8], topic: &str) -> Option<Vec<i32>> {
    let mut r = Wire(bytes);
    let _version = r.i16()?;
    let mut out = Vec::new();
    for _ in 0..r.count()? {
        let name = r.string()?;
        let n = r.count()?;
        for _ in 0..n {
            let p = r.i32()?;
            if name == topic.as_bytes() {
                out.push(p);
            }
        }
    }
    out.sort_unstable();
    Some(out)
}

/// A big-endian reader over the assignment's bytes.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }

    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }

    /// An array's length (a null array is empty).
    fn count(&mut self) -> Option<usize> {
        Some(usize::try_from(self.i32()?).unwrap_or(0))
    }

    fn string(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.i16()?).ok()?;
        if self.0.len() < n {
            return None;
        }
        let (s, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An assignment as a consumer leader writes it.
    fn assignment(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
        let mut b = version.to_be_bytes().to_vec();
        b.extend((topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            b.extend((t.len() as i16).to_be_bytes());
            b.extend(t.as_bytes());
            b.extend((ps.len() as i32).to_be_bytes());
            for p in *ps {
                b.extend(p.to_be_bytes());
            }
        }
        match user_data {
            Some(d) => {
                b.extend((d.len() as i32).to_be_bytes());
                b.extend(d);
            }
            None => b.extend((-1i32).to_be_bytes()),
        }
        b
    }

    #[test]
    fn an_assignment_gives_the_partitions_of_our_topic_only() {
        let a = assignment(1, &[("other", &[0, 1]), ("series", &[7, 2, 4])], None);
        assert_eq!(assigned_partitions(&a, "series"), Some(vec![2, 4, 7]));
        assert_eq!(assigned_partitions(&a, "other"), Some(vec![0, 1]));
        assert_eq!(assigned_partitions(&a, "missing"), Some(vec![]));
        let a = assignment(3, &[("series", &[5])], Some(b"sticky"));
        assert_eq!(assigned_partitions(&a, "series"), Some(vec![5]));
        // A member without an assignment yet, and bytes cut short.
        assert_eq!(assigned_partitions(&[], "series"), None);
        assert_eq!(assigned_partitions(&a[..9], "series"), None);
    }

    #[test]
    fn the_holder_is_the_member_assigned_the_partition() {
        let member = |id: &str, partitions: Vec<i32>| Member {
            client_id: format!("wmtop@{id}/1"),
            host: "10.0.0.1".into(),
            member_id: id.into(),
            partitions,
        };
        let g = Group {
            state: "Stable".into(),
            members: vec![member("a", vec![0, 2]), member("b", vec![1])],
        };
        assert_eq!(g.holder(1).map(|m| m.member_id.as_str()), Some("b"));
        assert_eq!(g.holder(2).map(|m| m.member_id.as_str()), Some("a"));
        assert_eq!(g.holder(3), None);
        assert!(!g.rebalancing());
        let moving = Group {
            state: "PreparingRebalance".into(),
            ..g
        };
        assert!(moving.rebalancing());
    }
}
