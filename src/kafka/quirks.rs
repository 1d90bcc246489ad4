//! Workarounds for the local broker (tansu, which the project's own stack runs), kept in
//! one place and off for every other broker. They turn on only on a fact the broker
//! reports: its cluster id (tansu's default is `tansu_cluster`).
//!
//! - A short fetch wait: tansu holds a fetch for `fetch.wait.max.ms` whenever it has less
//!   than one batch per partition to send, which throttles a catch-up read badly with
//!   librdkafka's 500 ms default. Real brokers answer as soon as data is there, and a
//!   short wait would only make an idle consumer fetch many times a second.

use rdkafka::ClientConfig;

use super::config::Role;

/// The cluster ids the local broker reports.
const LOCAL_BROKER_IDS: &[&str] = &["tansu_cluster"];

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

    /// The broker is the local one.
    pub fn is_local_broker(self) -> bool {
        self.local_broker
    }

    /// Adds the workarounds' properties for a client of this role.
    pub(super) fn apply(self, role: Role, c: &mut ClientConfig) {
        if self.local_broker && matches!(role, Role::Group | Role::Reader) {
            c.set("fetch.wait.max.ms", "50");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_local_brokers_cluster_id_turns_them_on() {
        assert!(Quirks::from_cluster_id(Some("tansu_cluster")).is_local_broker());
        assert!(!Quirks::from_cluster_id(Some("lkc-12345")).is_local_broker());
        assert!(!Quirks::from_cluster_id(None).is_local_broker());
    }
}
