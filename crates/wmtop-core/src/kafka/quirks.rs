//! Workarounds for the local broker (tansu, which the project's own stack runs), kept in
//! one place and off for every other broker. They turn on only on a fact the broker
//! reports: its cluster id (tansu's default is `tansu_cluster`).
//!
//! - A short fetch wait: tansu holds a fetch for `fetch.wait.max.ms` whenever it has less
//!   than one batch per partition to send, which throttles a catch-up read badly with
//!   librdkafka's 500 ms default. Real brokers answer as soon as data is there, and a
//!   short wait would only make an idle consumer fetch many times a second.
//! - Message size: tansu never serves a record of 5 MiB or more (it caps every fetch
//!   answer at 5 MiB), and such a record blocks its partition for good. The producer
//!   refuses messages that large on this broker, so the error comes at once, by name.
//! - Group members: tansu drops the connection on DescribeGroups, so it cannot say
//!   whether a group has live members; a replay or skip on it goes ahead (on every other
//!   broker, live members refuse them).
//! - Orphaned partitions: when a member dies without leaving, tansu expires its session
//!   but keeps handing out the old assignment, so the dead member's partitions are held
//!   by nobody. The group consumer logs its JoinGroup answers (`debug=cgrp`), and when the
//!   broker says this consumer leads a group of one member while it holds fewer than all
//!   partitions, it re-joins. It never acts because an offset stood still: a live peer
//!   that is slow (retrying inserts, paused) is a member, and nothing happens.

use rdkafka::ClientConfig;

use super::role::Role;

/// The cluster ids the local broker reports.
const LOCAL_BROKER_IDS: &[&str] = &["tansu_cluster"];

/// The largest record the local broker serves (its fetch answers stop short of 5 MiB),
/// less room for the key and the record's framing.
pub const LOCAL_BROKER_MAX_RECORD: usize = 5 * 1024 * 1024 - 64 * 1024;

/// Which workarounds are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quirks {
    local_broker: bool,
}

impl Quirks {
    /// No workaround: any broker but the local one.
    pub fn none() -> Quirks {
        Quirks::default()
    }

    /// The local broker's workarounds.
    pub fn local_broker() -> Quirks {
        Quirks { local_broker: true }
    }

    /// From the cluster id the broker reported (None: it reported none).
    pub fn from_cluster_id(id: Option<&str>) -> Quirks {
        Quirks {
            local_broker: id.is_some_and(|id| LOCAL_BROKER_IDS.contains(&id)),
        }
    }

    /// The broker cannot describe a group's members (DescribeGroups fails).
    pub fn cannot_describe_groups(self) -> bool {
        self.local_broker
    }

    /// The broker is the local one.
    pub fn is_local_broker(self) -> bool {
        self.local_broker
    }

    /// Adds the workarounds' properties for a client of this role.
    pub(super) fn apply(self, role: Role, c: &mut ClientConfig) {
        if self.local_broker && matches!(role, Role::Group | Role::Reader) {
            c.set("fetch.wait.max.ms", "50");
        }
        if self.local_broker && role == Role::Producer {
            c.set("message.max.bytes", LOCAL_BROKER_MAX_RECORD.to_string());
        }
        if self.local_broker && role == Role::Group {
            // The JoinGroup answers, for the orphaned-partition check.
            c.set("debug", "cgrp");
        }
    }

    /// Partitions to take back by re-joining (see the module's doc), from what the broker
    /// said in its last JoinGroup answer; empty when nothing is orphaned or it cannot be
    /// told.
    pub fn orphaned(self, view: Option<GroupView>, held: &[i32], all: &[i32]) -> Vec<i32> {
        match view {
            Some(v) if self.local_broker && v.leader && v.members == 1 => {
                all.iter().filter(|p| !held.contains(p)).copied().collect()
            }
            _ => Vec::new(),
        }
    }
}

/// The group as the broker described it in its last JoinGroup answer to this consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupView {
    pub generation: i32,
    /// This consumer leads the group (only the leader is told the members).
    pub leader: bool,
    /// Members the broker listed (0 for a member that does not lead).
    pub members: usize,
}

impl GroupView {
    /// Reads librdkafka's JoinGroup debug line: `JoinGroup response: GenerationId 3,
    /// Protocol range, LeaderId rdkafka-… (me), my MemberId rdkafka-…, member metadata
    /// count 1: Success`.
    pub fn parse(line: &str) -> Option<GroupView> {
        let rest = line.split("JoinGroup response: GenerationId ").nth(1)?;
        let generation = rest.split(',').next()?.trim().parse().ok()?;
        let leader = rest
            .split("LeaderId ")
            .nth(1)?
            .split(',')
            .next()?
            .ends_with(" (me)");
        let members = rest
            .split("member metadata count ")
            .nth(1)?
            .split(':')
            .next()?
            .trim()
            .parse()
            .ok()?;
        Some(GroupView {
            generation,
            leader,
            members,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_slow_peer_keeps_its_partitions_and_a_lone_leader_takes_the_orphans() {
        let local = Quirks::local_broker();
        let all = [0, 1, 2];
        // A peer that is slow (retrying inserts, paused) is still a member: nothing.
        let two = GroupView::parse("JoinGroup response: GenerationId 4, Protocol range, LeaderId rdkafka-a (me), my MemberId rdkafka-a, member metadata count 2: Success");
        assert_eq!(
            two,
            Some(GroupView {
                generation: 4,
                leader: true,
                members: 2
            })
        );
        assert!(local.orphaned(two, &[0, 1], &all).is_empty());
        // Not the leader: the broker did not say who is in the group.
        let member = GroupView::parse("JoinGroup response: GenerationId 4, Protocol range, LeaderId rdkafka-b, my MemberId rdkafka-a, member metadata count 0: Success");
        assert!(local.orphaned(member, &[0, 1], &all).is_empty());
        assert!(local.orphaned(None, &[0, 1], &all).is_empty());
        // Alone, by the broker's own answer, yet short of partitions: re-join for them.
        let alone = GroupView::parse("JoinGroup response: GenerationId 5, Protocol range, LeaderId rdkafka-a (me), my MemberId rdkafka-a, member metadata count 1: Success");
        assert_eq!(local.orphaned(alone, &[0, 1], &all), vec![2]);
        assert!(local.orphaned(alone, &[0, 1, 2], &all).is_empty());
        // Never on another broker.
        assert!(Quirks::none().orphaned(alone, &[0, 1], &all).is_empty());
    }

    #[test]
    fn only_the_local_brokers_cluster_id_turns_them_on() {
        assert!(Quirks::from_cluster_id(Some("tansu_cluster")).is_local_broker());
        assert!(!Quirks::from_cluster_id(Some("lkc-12345")).is_local_broker());
        assert!(!Quirks::from_cluster_id(None).is_local_broker());
    }
}
