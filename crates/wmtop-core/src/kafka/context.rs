//! The context every Kafka client runs with: librdkafka's log lines go to wmtop's
//! logger, and errors that retrying cannot fix (the brokers refused the SASL login, the
//! TLS handshake failed on the certificate) are kept, so that a wait for the brokers
//! ends at once with the reason instead of retrying forever. A broker's answer larger
//! than the client receives (`receive.message.max.bytes`) is kept too, by its size: it
//! is why a partition stands still.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// An error from the brokers that retrying cannot fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    #[error("the brokers refused the SASL login ({0}); check kafka_sasl_username, the password and kafka_sasl_mechanism")]
    Auth(String),
    #[error("TLS with the brokers failed: {0}")]
    Tls(String),
}

/// Shared by the clients of one run.
#[derive(Clone, Default)]
pub struct KafkaContext {
    fault: Arc<Mutex<Option<Fault>>>,
    /// The largest answer refused for its size (0: none).
    oversized: Arc<AtomicU64>,
}

impl KafkaContext {
    /// The size of the largest broker answer the client refused as larger than
    /// `receive.message.max.bytes`, if one was.
    pub fn oversized(&self) -> Option<u64> {
        Some(self.oversized.load(Ordering::Relaxed)).filter(|n| *n > 0)
    }

    /// Notes an answer refused for its size, from librdkafka's words ("Invalid response
    /// size 12000123 (0..11534336): increase receive.message.max.bytes").
    fn note_size(&self, message: &str) {
        let size = message
            .split("Invalid response size ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = size {
            self.oversized.fetch_max(n, Ordering::Relaxed);
        }
    }

    /// The first permanent error seen, if any.
    pub fn fault(&self) -> Option<Fault> {
        self.fault.lock().ok().and_then(|f| f.clone())
    }

    fn keep(&self, f: Fault) {
        if let Ok(mut slot) = self.fault.lock() {
            if slot.is_none() {
                // Said once, by the run that ends on it.
                tracing::debug!("Kafka: {f}");
                *slot = Some(f);
            }
        }
    }
}

/// The TLS failure in words: which certificate problem, else librdkafka's reason.
pub fn tls_words(reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    let what = if r.contains("certificate verify failed")
        && (r.contains("unable to get local issuer")
            || r.contains("self-signed")
            || r.contains("self signed")
            || r.contains("unknown ca"))
    {
        Some("the brokers' certificate is signed by an unknown certificate authority (set kafka_ca_file to the CA's PEM file)")
    } else if r.contains("certificate verify failed") && r.contains("could not be verified") {
        // librdkafka says the same for an unknown CA and for a certificate issued for
        // another name.
        Some("the brokers' certificate could not be verified: it is signed by an unknown certificate authority (set kafka_ca_file to the CA's PEM file) or not issued for the broker's name or address")
    } else if r.contains("hostname mismatch")
        || r.contains("name mismatch")
        || r.contains("does not match")
        || r.contains("ip address mismatch")
    {
        Some("the brokers' certificate does not match the broker's name or address (name mismatch)")
    } else if r.contains("certificate has expired") {
        Some("the brokers' certificate has expired")
    } else {
        None
    };
    match what {
        Some(w) => w.to_string(),
        None => reason.trim().to_string(),
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        // A certificate the brokers' TLS handshake refused is logged at once; the error
        // event for it comes only after several attempts.
        if fac == "FAIL"
            && message.contains("SSL handshake failed")
            && message.contains("certificate")
        {
            self.keep(Fault::Tls(tls_words(message)));
        }
        self.note_size(message);
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {fac}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::debug!("librdkafka {fac}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::trace!("librdkafka {fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.note_size(reason);
        match error.rdkafka_error_code() {
            Some(RDKafkaErrorCode::Authentication) => self.keep(Fault::Auth(reason.trim().into())),
            Some(RDKafkaErrorCode::SSL) if reason.to_ascii_lowercase().contains("certificate") => {
                self.keep(Fault::Tls(tls_words(reason)))
            }
            _ => tracing::debug!("Kafka: {error}: {reason}"),
        }
    }
}

impl ConsumerContext for KafkaContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permanent_errors_are_kept_and_told_in_words() {
        let c = KafkaContext::default();
        c.error(
            KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
            "connection refused",
        );
        assert_eq!(c.fault(), None, "a refused connection is retried");
        c.error(
            KafkaError::Global(RDKafkaErrorCode::SSL),
            "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified",
        );
        let f = c.fault().unwrap().to_string();
        assert!(
            f.contains("unknown certificate authority") && f.contains("kafka_ca_file"),
            "{f}"
        );
        c.error(
            KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error",
        );
        assert!(
            matches!(c.fault(), Some(Fault::Tls(_))),
            "the first fault stays"
        );
    }

    #[test]
    fn an_answer_too_large_to_receive_is_kept_by_its_size() {
        let c = KafkaContext::default();
        assert_eq!(c.oversized(), None);
        c.log(
            RDKafkaLogLevel::Error,
            "FAIL",
            "127.0.0.1:9092/1: Receive failed: Invalid response size 12000310 (0..11534336): increase receive.message.max.bytes",
        );
        assert_eq!(c.oversized(), Some(12_000_310));
        c.error(
            KafkaError::Global(RDKafkaErrorCode::BadMessage),
            "127.0.0.1:9092/1: Receive failed: Invalid response size 9000 (0..11534336)",
        );
        assert_eq!(c.oversized(), Some(12_000_310), "the largest stays");
        assert_eq!(c.fault(), None, "not a fault: skipping the message helps");
    }
}
