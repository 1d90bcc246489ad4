//! The topic: an existing topic is used as it is (no CreateTopics call, so a user
//! without that permission is fine); a missing one is created only when `create_topic`
//! allows it, with the configured replication factor (else the broker's own default,
//! else 1 where the broker cannot take that request) and `max.message.bytes` large
//! enough for what the producer sends. A refused creation says which permission is
//! missing.

use std::time::Duration;

use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::RDKafkaErrorCode;

use super::client::{Kafka, KafkaOpError};
use super::config::MAX_MESSAGE_BYTES;

/// What [`ensure`] found or did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicState {
    /// It was there, with this many partitions.
    Existing(usize),
    /// wmtop created it, with this replication factor.
    Created { replication: i32 },
}

/// The topic's partitions, or None when it does not exist, once the brokers answer
/// within `timeout` (see [`Kafka::answered`]): one client and one request both reach the
/// brokers and find the topic. Blocking.
pub fn partitions(kafka: &Kafka, timeout: Duration) -> Result<Option<Vec<i32>>, KafkaOpError> {
    let topic = kafka.settings().topic.clone();
    let client = kafka.offsets()?;
    let md = kafka.answered(&client, Some(&topic), timeout);
    // A consume run starts once this answer is in: it does not wait for the close.
    super::client::close_aside(client);
    let md = md?;
    let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    match t.error() {
        Some(e) if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition => {
            Ok(None)
        }
        Some(e) => Err(KafkaOpError::Refused(format!(
            "Kafka at {}: topic {topic}: {}",
            kafka.settings().kafka_brokers,
            RDKafkaErrorCode::from(e)
        ))),
        None if t.partitions().is_empty() => Ok(None),
        None => Ok(Some(t.partitions().iter().map(|p| p.id()).collect())),
    }
}

/// Makes sure the topic exists (see the module's doc). Blocking parts run on the
/// caller's thread; the admin request is awaited.
pub async fn ensure(kafka: &Kafka) -> Result<TopicState, KafkaOpError> {
    let k = kafka.clone();
    let found = tokio::task::spawn_blocking(move || partitions(&k, Duration::from_secs(10)))
        .await
        .map_err(|e| KafkaOpError::Refused(format!("reading topic metadata failed: {e}")))??;
    if let Some(parts) = found {
        return Ok(TopicState::Existing(parts.len()));
    }
    let s = kafka.settings();
    if !s.create_topic {
        return Err(KafkaOpError::NoTopic {
            topic: s.topic.clone(),
            hint: " and create_topic is off: create it, or turn create_topic on",
        });
    }
    let admin = kafka.admin()?;
    let max_bytes = (MAX_MESSAGE_BYTES + 1024 * 1024).to_string();
    let wanted = s.replication_factor.map(i32::from);
    let mut replication = wanted.unwrap_or(-1);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    loop {
        let topic = NewTopic::new(&s.topic, s.partitions, TopicReplication::Fixed(replication))
            .set("max.message.bytes", &max_bytes);
        let results = admin
            .create_topics([&topic], &opts)
            .await
            .map_err(kafka.op("create topic"))?;
        let code = match results.into_iter().next() {
            Some(Ok(_)) => {
                tracing::info!(
                    "created topic {} ({} partitions, replication {})",
                    s.topic,
                    s.partitions,
                    if replication < 0 {
                        "the broker's default".to_string()
                    } else {
                        replication.to_string()
                    }
                );
                return Ok(TopicState::Created { replication });
            }
            Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) | None => {
                return Ok(TopicState::Existing(s.partitions.max(0) as usize))
            }
            Some(Err((_, code))) => code,
        };
        match code {
            RDKafkaErrorCode::InvalidReplicationFactor
            | RDKafkaErrorCode::UnsupportedVersion
            | RDKafkaErrorCode::UnsupportedFeature
            | RDKafkaErrorCode::InvalidRequest
                if replication < 0 =>
            {
                // The broker cannot take "its own default": fall back to 1, as the
                // broker answered.
                tracing::info!(
                    "the broker did not take a default replication factor ({code}); creating {} with replication 1",
                    s.topic
                );
                replication = 1;
            }
            RDKafkaErrorCode::TopicAuthorizationFailed
            | RDKafkaErrorCode::ClusterAuthorizationFailed => {
                return Err(KafkaOpError::Refused(format!(
                    "Kafka at {}: creating topic {} was refused ({code}): it needs the CREATE permission on the topic or the cluster. \
                     Ask for it, or have the topic created ({} partitions, max.message.bytes at least {max_bytes}) and set create_topic = false",
                    s.kafka_brokers, s.topic, s.partitions
                )))
            }
            RDKafkaErrorCode::PolicyViolation | RDKafkaErrorCode::InvalidConfig => {
                return Err(KafkaOpError::Refused(format!(
                    "Kafka at {}: the broker refused to create topic {} ({code}); set replication_factor to what the cluster requires, or create the topic yourself",
                    s.kafka_brokers, s.topic
                )))
            }
            other => {
                return Err(kafka.error("create topic", rdkafka::error::KafkaError::AdminOp(other)))
            }
        }
    }
}

impl Kafka {
    /// Waits, with the one retry policy until `max_wait`, for the brokers to answer and
    /// the topic to be there (created where missing and allowed); a permanent error
    /// (a refused login, a bad certificate, a refused creation) ends the wait at once.
    pub async fn ready_until(
        &self,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<TopicState, crate::net::retry::WaitError<KafkaOpError>> {
        let what = format!("Kafka at {}", self.settings().kafka_brokers);
        crate::net::retry::wait_for(&what, Some(self.settings().max_wait.0), stop, || {
            ensure(self)
        })
        .await
    }

    /// As [`Kafka::ready_until`], with no stop; a wait that ran out is an error too.
    pub async fn ready(&self) -> Result<TopicState, KafkaOpError> {
        let (_keep, never) = tokio::sync::watch::channel(false);
        self.ready_until(&never).await.map_err(|e| match e {
            crate::net::retry::WaitError::GaveUp { waited, last } => KafkaOpError::GaveUp {
                waited,
                last: Box::new(last),
            },
            crate::net::retry::WaitError::Permanent(e) => e,
            crate::net::retry::WaitError::Stopped => KafkaOpError::Refused("stopped".into()),
        })
    }
}
