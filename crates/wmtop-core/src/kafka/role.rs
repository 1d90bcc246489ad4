//! What a Kafka client is for; the one configuration builder and the broker's
//! workarounds both decide by it.

/// What a client is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Publishes: acks=all, idempotent, bounded local queue.
    Producer,
    /// Consumes in the group; offsets are stored and committed by wmtop alone, after
    /// ClickHouse acknowledged the rows.
    Group,
    /// Reads partitions directly (assign, never joins, never commits).
    Reader,
    /// Reads the group's committed offsets and the watermarks (never joins); also commits
    /// a replay's or a skip's offsets for a group with no live member.
    Offsets,
    /// Creates topics, describes the cluster.
    Admin,
}
