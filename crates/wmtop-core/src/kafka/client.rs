//! The Kafka handle of a run: it knows the settings and the errors retrying cannot fix,
//! and makes every client from the one configuration builder; and the errors of Kafka
//! operations.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use super::config::client_config;
use super::context::{Fault, KafkaContext};
use super::role::Role;
use crate::config::Settings;

/// A consumer for reading offsets and partitions directly.
pub type Reader = BaseConsumer<KafkaContext>;
/// The group consumer.
pub type GroupConsumer = StreamConsumer<KafkaContext>;
/// The producer.
pub type Producer = FutureProducer<KafkaContext>;

/// Lets a client go on a thread of its own: closing one waits for librdkafka's threads
/// to wind down (about 100 ms, measured on the local broker), which a caller that has
/// nothing more to ask of it need not wait for.
pub fn close_aside<T: Send + 'static>(client: T) {
    // Should no thread be had, the client closes here, as it would have.
    let _ = std::thread::Builder::new()
        .name("wmtop-kafka-close".into())
        .spawn(move || drop(client));
}

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaOpError {
    #[error("Kafka at {brokers}: {action}: {}", words(cause))]
    Kafka {
        brokers: String,
        action: &'static str,
        cause: KafkaError,
    },
    #[error("Kafka at {1}: {0}")]
    Fault(Fault, String),
    #[error("topic {topic} does not exist{hint}")]
    NoTopic { topic: String, hint: &'static str },
    #[error("{0}")]
    Refused(String),
    #[error("gave up after {}s: {last}", waited.as_secs())]
    GaveUp {
        waited: Duration,
        last: Box<KafkaOpError>,
    },
}

impl crate::net::retry::Transient for KafkaOpError {
    fn transient(&self) -> bool {
        !self.permanent()
    }
}

impl KafkaOpError {
    /// Retrying cannot help: a refused login, a bad certificate, a missing topic that
    /// may not be created, a missing permission.
    pub fn permanent(&self) -> bool {
        matches!(
            self,
            KafkaOpError::Fault(..)
                | KafkaOpError::Refused(_)
                | KafkaOpError::NoTopic { .. }
                | KafkaOpError::GaveUp { .. }
        )
    }
}

/// A librdkafka error in words: what it means for the user first.
fn words(e: &KafkaError) -> String {
    use rdkafka::error::RDKafkaErrorCode as C;
    match e.rdkafka_error_code() {
        Some(C::BrokerTransportFailure | C::AllBrokersDown | C::Resolve) => {
            format!(
                "the brokers could not be reached (is Kafka up there?) ({})",
                e.rdkafka_error_code()
                    .map(|c| c.to_string())
                    .unwrap_or_default()
            )
        }
        Some(C::OperationTimedOut | C::RequestTimedOut) => "timed out".into(),
        Some(code) => code.to_string(),
        None => e.to_string(),
    }
}

/// Makes Kafka clients for one run: all from [`client_config`], all with one context.
#[derive(Clone)]
pub struct Kafka {
    settings: Arc<Settings>,
    context: KafkaContext,
}

impl Kafka {
    /// No I/O yet: [`Kafka::identify`] is the first request.
    pub fn new(settings: &Settings) -> Kafka {
        Kafka {
            settings: Arc::new(settings.clone()),
            context: KafkaContext::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The error retrying cannot fix, if one was seen.
    pub fn fault(&self) -> Option<Fault> {
        self.context.fault()
    }

    /// The largest broker answer a client refused for its size, if one was.
    pub fn oversized(&self) -> Option<u64> {
        self.context.oversized()
    }

    /// The error for a failed action: the permanent fault behind it when there is one.
    pub fn error(&self, action: &'static str, source: KafkaError) -> KafkaOpError {
        match self.fault() {
            Some(f) => KafkaOpError::Fault(f, self.settings.kafka_brokers.clone()),
            None => KafkaOpError::Kafka {
                brokers: self.settings.kafka_brokers.clone(),
                action,
                cause: source,
            },
        }
    }

    /// An authorization error in words, naming what was refused to whom and the
    /// permission it needs; None for any other error. Retrying cannot fix it.
    pub fn denied(&self, e: &KafkaError) -> Option<KafkaOpError> {
        use rdkafka::error::RDKafkaErrorCode as C;
        let s = &*self.settings;
        let code = e.rdkafka_error_code()?;
        let (what, needs) = match code {
            C::GroupAuthorizationFailed => (
                format!("consumer group {}", s.group),
                format!("the READ permission on group {}", s.group),
            ),
            C::TopicAuthorizationFailed => (
                format!("topic {}", s.topic),
                format!(
                    "the READ permission on topic {} to consume it (WRITE to publish)",
                    s.topic
                ),
            ),
            C::ClusterAuthorizationFailed => (
                "the cluster".to_string(),
                "a cluster permission for this request".to_string(),
            ),
            _ => return None,
        };
        let who = s
            .kafka_sasl_username
            .as_deref()
            .map_or("this client".to_string(), |u| format!("user {u}"));
        Some(KafkaOpError::Refused(format!(
            "Kafka at {}: {who} may not use {what} ({code}): it needs {needs}",
            s.kafka_brokers
        )))
    }

    /// A closure for `map_err`.
    pub fn op(&self, action: &'static str) -> impl FnOnce(KafkaError) -> KafkaOpError + '_ {
        move |e| self.error(action, e)
    }

    /// The properties for a client of this role.
    pub fn config(&self, role: Role) -> rdkafka::ClientConfig {
        client_config(&self.settings, role)
    }

    /// The client id the brokers see for this run's clients (`wmtop@HOST/PID` unless the
    /// user set `client.id`): a group member with it is this process.
    pub fn client_id(&self) -> String {
        super::config::client_id(&self.settings)
    }

    /// Asks the brokers for the cluster's metadata and id; returns the id (None where the
    /// broker reports none). Blocking. Fails (permanently where the context saw a refused
    /// login or a bad certificate) when the brokers cannot be reached.
    pub fn identify(&self, timeout: Duration) -> Result<Option<String>, KafkaOpError> {
        let admin: Reader = self.create(Role::Offsets, "create client")?;
        self.answered(&admin, None, timeout)?;
        Ok(admin.client().fetch_cluster_id(timeout))
    }

    /// Asks the brokers for the metadata of `topic` (of every topic when None) on
    /// `client`, in short steps, so a refused login or a bad certificate (seen by the
    /// context within milliseconds) ends the wait at once. Blocking.
    pub(crate) fn answered(
        &self,
        client: &Reader,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<rdkafka::metadata::Metadata, KafkaOpError> {
        let started = std::time::Instant::now();
        loop {
            match client.fetch_metadata(topic, Duration::from_millis(500)) {
                Ok(md) => return Ok(md),
                Err(e) => {
                    // Serves the client's events, which hands errors to the context.
                    let _ = client.poll(Duration::ZERO);
                    if self.fault().is_some() || started.elapsed() >= timeout {
                        let action = if topic.is_some() {
                            "read topic metadata"
                        } else {
                            "read cluster metadata"
                        };
                        return Err(self.error(action, e));
                    }
                }
            }
        }
    }

    fn create<C: rdkafka::config::FromClientConfigAndContext<KafkaContext>>(
        &self,
        role: Role,
        action: &'static str,
    ) -> Result<C, KafkaOpError> {
        self.config(role)
            .create_with_context(self.context.clone())
            .map_err(self.op(action))
    }

    pub fn producer(&self) -> Result<Producer, KafkaOpError> {
        self.create(Role::Producer, "create producer")
    }

    pub fn group_consumer(&self) -> Result<GroupConsumer, KafkaOpError> {
        self.create(Role::Group, "create consumer")
    }

    /// A consumer that reads partitions directly and never joins the group.
    pub fn reader(&self) -> Result<Reader, KafkaOpError> {
        self.create(Role::Reader, "create reader")
    }

    /// A client with the group's id that reads its committed offsets (never joins).
    pub fn offsets(&self) -> Result<Reader, KafkaOpError> {
        self.create(Role::Offsets, "create offsets client")
    }

    pub fn admin(&self) -> Result<AdminClient<KafkaContext>, KafkaOpError> {
        self.create(Role::Admin, "create admin client")
    }
}
