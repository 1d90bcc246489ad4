//! The Kafka handle of a run: it knows the settings, the broker's workarounds (asked of
//! the broker by [`Kafka::identify`]) and the errors retrying cannot fix, and makes every
//! client from the one configuration builder; and the errors of Kafka operations.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::AdminClient;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;

use super::config::client_config;
use super::context::{Fault, KafkaContext};
use super::quirks::{self, Quirks};
use super::role::Role;
use crate::config::Settings;

/// A consumer for reading offsets and partitions directly.
pub type Reader = BaseConsumer<KafkaContext>;
/// The group consumer.
pub type GroupConsumer = StreamConsumer<KafkaContext>;
/// The producer.
pub type Producer = FutureProducer<KafkaContext>;

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
    quirks: Arc<Mutex<Quirks>>,
}

impl Kafka {
    /// No I/O yet: the broker is asked what it is by [`Kafka::identify`].
    pub fn new(settings: &Settings) -> Kafka {
        Kafka {
            settings: Arc::new(settings.clone()),
            context: KafkaContext::default(),
            quirks: Arc::new(Mutex::new(Quirks::none())),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The workarounds in force.
    pub fn quirks(&self) -> Quirks {
        self.quirks.lock().map(|q| *q).unwrap_or_default()
    }

    /// The error retrying cannot fix, if one was seen.
    pub fn fault(&self) -> Option<Fault> {
        self.context.fault()
    }

    /// The group as the broker last described it to this run's group consumer.
    pub fn group_view(&self) -> Option<quirks::GroupView> {
        self.context.group_view()
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

    /// A closure for `map_err`.
    pub fn op(&self, action: &'static str) -> impl FnOnce(KafkaError) -> KafkaOpError + '_ {
        move |e| self.error(action, e)
    }

    /// The properties for a client of this role.
    pub fn config(&self, role: Role) -> rdkafka::ClientConfig {
        client_config(&self.settings, role, self.quirks())
    }

    /// Asks the broker for its cluster id and turns on the local broker's workarounds
    /// if it is that broker. Blocking. Fails (permanently where the context saw a
    /// refused login or a bad certificate) when the brokers cannot be reached.
    pub fn identify(&self, timeout: Duration) -> Result<Quirks, KafkaOpError> {
        let admin: Reader = self.create(Role::Offsets, "create client")?;
        // Ask in short steps, so a refused login or a bad certificate (seen by the
        // context within milliseconds) ends the wait at once.
        let started = std::time::Instant::now();
        loop {
            match admin.fetch_metadata(None, Duration::from_millis(500)) {
                Ok(_) => break,
                Err(e) => {
                    // Serves the client's events, which hands errors to the context.
                    let _ = admin.poll(Duration::ZERO);
                    if self.fault().is_some() || started.elapsed() >= timeout {
                        return Err(self.error("read cluster metadata", e));
                    }
                }
            }
        }
        let id = admin.client().fetch_cluster_id(timeout);
        let q = Quirks::from_cluster_id(id.as_deref());
        if q.is_local_broker() {
            tracing::info!(
                "Kafka at {}: the local broker (cluster id {:?}): its workarounds are on",
                self.settings.kafka_brokers,
                id.unwrap_or_default()
            );
        }
        if let Ok(mut slot) = self.quirks.lock() {
            *slot = q;
        }
        Ok(q)
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
