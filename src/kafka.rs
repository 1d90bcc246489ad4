//! Kafka plumbing: client settings for the producer and the consumer (bounded queues,
//! large enough for ~3 MB transactions), creating the topic when it is missing, moving a
//! consumer group's offsets for a replay, and reading per-partition lag.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::config::Settings;

/// The largest message wmtop produces or reads (10 MiB).
pub const MAX_MESSAGE_BYTES: usize = 10 * 1024 * 1024;

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaOpError {
    #[error("Kafka at {brokers}: {action}: {source}")]
    Kafka {
        brokers: String,
        action: &'static str,
        source: KafkaError,
    },
    #[error("topic {topic} has no partitions (does it exist?)")]
    NoPartitions { topic: String },
}

pub(crate) fn op(brokers: &str, action: &'static str) -> impl FnOnce(KafkaError) -> KafkaOpError {
    let brokers = brokers.to_string();
    move |source| KafkaOpError::Kafka {
        brokers,
        action,
        source,
    }
}

/// Settings every client shares.
pub fn base_config(settings: &Settings) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &settings.kafka_brokers)
        .set("client.id", "wmtop")
        .set("socket.keepalive.enable", "true")
        // librdkafka's own log lines go through our logger, not stderr.
        .set("log_level", "4");
    c
}

/// Producer settings: acks=all, idempotent, bounded local queue.
pub fn producer_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    c.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set("queue.buffering.max.kbytes", "65536")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "60000");
    c
}

/// Consumer settings: manual commits only, offsets stored by us after ClickHouse acked.
pub fn consumer_config(settings: &Settings) -> ClientConfig {
    let mut c = base_config(settings);
    c.set("group.id", &settings.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("fetch.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set("max.partition.fetch.bytes", MAX_MESSAGE_BYTES.to_string())
        .set(
            "receive.message.max.bytes",
            (MAX_MESSAGE_BYTES + 1024 * 1024).to_string(),
        )
        .set("queued.max.messages.kbytes", "32768")
        // tansu holds a fetch this long when it has less than one batch per partition
        // to send; librdkafka's 500 ms default throttles a catch-up read badly.
        .set("fetch.wait.max.ms", "50");
    c
}

/// Creates the topic with the configured partitions unless it exists. True if created.
pub async fn ensure_topic(settings: &Settings) -> Result<bool, KafkaOpError> {
    let brokers = settings.kafka_brokers.as_str();
    let admin: AdminClient<DefaultClientContext> = base_config(settings)
        .create()
        .map_err(op(brokers, "create admin client"))?;
    let topic = NewTopic::new(
        &settings.topic,
        settings.partitions,
        TopicReplication::Fixed(1),
    );
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &opts)
        .await
        .map_err(op(brokers, "create topic"))?;
    match results.into_iter().next() {
        Some(Ok(_)) => Ok(true),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => Ok(false),
        Some(Err((_, code))) => Err(KafkaOpError::Kafka {
            brokers: brokers.to_string(),
            action: "create topic",
            source: KafkaError::AdminOp(code),
        }),
    }
}

/// Where a replay starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFrom {
    /// The first message still on the topic.
    Beginning,
    /// The first message at or after this time (epoch ms).
    Time(i64),
}

/// One partition's position.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartitionLag {
    pub partition: i32,
    /// The group's committed offset (the next message it will read), if any.
    pub committed: Option<i64>,
    pub low: i64,
    pub high: i64,
    /// Messages not yet committed; unknown when the broker did not answer.
    pub lag: Option<i64>,
}

fn partitions(consumer: &BaseConsumer, settings: &Settings) -> Result<Vec<i32>, KafkaOpError> {
    let md = consumer
        .fetch_metadata(Some(&settings.topic), Duration::from_secs(10))
        .map_err(op(&settings.kafka_brokers, "read topic metadata"))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == settings.topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    if parts.is_empty() {
        return Err(KafkaOpError::NoPartitions {
            topic: settings.topic.clone(),
        });
    }
    Ok(parts)
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
pub fn replay_plan(settings: &Settings, from: ReplayFrom) -> Result<Vec<ReplayPart>, KafkaOpError> {
    let brokers = settings.kafka_brokers.as_str();
    let consumer: BaseConsumer = consumer_config(settings)
        .create()
        .map_err(op(brokers, "create consumer"))?;
    let timeout = Duration::from_secs(10);
    let positions = lag(&consumer, settings)?;
    let mut targets: Vec<(i32, i64)> = match from {
        ReplayFrom::Beginning => positions.iter().map(|p| (p.partition, p.low)).collect(),
        ReplayFrom::Time(ms) => {
            let mut tpl = TopicPartitionList::new();
            for p in &positions {
                tpl.add_partition_offset(&settings.topic, p.partition, Offset::Offset(ms))
                    .map_err(op(brokers, "build partition list"))?;
            }
            let found = consumer
                .offsets_for_times(tpl, timeout)
                .map_err(op(brokers, "find offsets for the time"))?;
            found
                .elements()
                .iter()
                .map(|e| {
                    let high = positions
                        .iter()
                        .find(|p| p.partition == e.partition())
                        .map_or(0, |p| p.high);
                    match e.offset() {
                        Offset::Offset(o) => (e.partition(), o),
                        // No message at or after the time: nothing to re-read there.
                        _ => (e.partition(), high),
                    }
                })
                .collect()
        }
    };
    targets.sort_unstable();
    Ok(positions
        .iter()
        .map(|p| ReplayPart {
            partition: p.partition,
            committed: p.committed,
            target: targets
                .iter()
                .find(|(part, _)| *part == p.partition)
                .map_or(p.high, |(_, o)| *o),
            high: p.high,
        })
        .collect())
}

/// Commits a replay plan's targets for the group. Stop the group's consumers first.
/// Blocking.
pub fn apply_replay(settings: &Settings, plan: &[ReplayPart]) -> Result<(), KafkaOpError> {
    let brokers = settings.kafka_brokers.as_str();
    let consumer: BaseConsumer = consumer_config(settings)
        .create()
        .map_err(op(brokers, "create consumer"))?;
    let mut tpl = TopicPartitionList::new();
    for p in plan {
        tpl.add_partition_offset(&settings.topic, p.partition, Offset::Offset(p.target))
            .map_err(op(brokers, "build partition list"))?;
    }
    consumer
        .assign(&tpl)
        .map_err(op(brokers, "assign partitions"))?;
    consumer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .map_err(op(brokers, "commit replay offsets"))
}

/// Moves the group's committed offsets so its next run re-reads the topic. Blocking.
pub fn reset_group(settings: &Settings, from: ReplayFrom) -> Result<Vec<ReplayPart>, KafkaOpError> {
    let plan = replay_plan(settings, from)?;
    apply_replay(settings, &plan)?;
    Ok(plan)
}

/// The timestamp (epoch ms) of the message at `offset`, read with a group-less consumer.
/// Blocking; None when nothing arrives within the timeout.
pub fn message_time(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Option<i64> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .ok()?;
    consumer.assign(&tpl).ok()?;
    let msg = consumer.poll(Duration::from_millis(500))?.ok()?;
    use rdkafka::Message;
    msg.timestamp().to_millis()
}

/// A consumer for peeking at messages: no group, never commits.
pub fn peek_consumer(settings: &Settings) -> Result<BaseConsumer, KafkaOpError> {
    let mut c = base_config(settings);
    c.set("group.id", format!("{}-peek", settings.group))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("fetch.max.bytes", MAX_MESSAGE_BYTES.to_string())
        .set("max.partition.fetch.bytes", MAX_MESSAGE_BYTES.to_string())
        .set(
            "receive.message.max.bytes",
            (MAX_MESSAGE_BYTES + 1024 * 1024).to_string(),
        )
        .set("queued.max.messages.kbytes", "16384");
    c.create()
        .map_err(op(&settings.kafka_brokers, "create peek consumer"))
}

/// Each partition's committed offset, watermarks and lag. Blocking.
pub fn lag(
    consumer: &BaseConsumer,
    settings: &Settings,
) -> Result<Vec<PartitionLag>, KafkaOpError> {
    let brokers = settings.kafka_brokers.as_str();
    let parts = partitions(consumer, settings)?;
    let timeout = Duration::from_secs(5);
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition(&settings.topic, *p);
    }
    let committed = consumer
        .committed_offsets(tpl, timeout)
        .map_err(op(brokers, "read committed offsets"))?;
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        let committed_at =
            committed
                .find_partition(&settings.topic, p)
                .and_then(|e| match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
        let (low, high) = consumer
            .fetch_watermarks(&settings.topic, p, timeout)
            .map_err(op(brokers, "read watermarks"))?;
        let from = committed_at.unwrap_or(low).max(low);
        out.push(PartitionLag {
            partition: p,
            committed: committed_at,
            low,
            high,
            lag: (high >= from).then_some(high - from),
        });
    }
    Ok(out)
}
