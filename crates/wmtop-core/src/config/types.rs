//! The value types settings are given in: times (epoch milliseconds or RFC 3339),
//! durations ("5s", "250ms"), Kafka's security protocol and SASL mechanism; each read
//! from text in flags, environment and file alike.

use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// A point in time given as epoch milliseconds or as an RFC 3339 time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochMs(pub i64);

impl FromStr for EpochMs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(ms) = t.parse::<i64>() {
            return Ok(EpochMs(ms));
        }
        t.parse::<jiff::Timestamp>()
            .map(|ts| EpochMs(ts.as_millisecond()))
            .map_err(|_| format!("{t:?} is neither epoch milliseconds nor an RFC 3339 time (2026-01-01T00:00:00Z)"))
    }
}

/// A duration given as "5s", "250ms", "2m" or a bare number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{t:?} is not a duration (like 5s, 250ms, 2m)"))?;
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => n / 1000.0,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            other => return Err(format!("{t:?}: unknown unit {other:?} (use ms, s, m or h)")),
        };
        Duration::try_from_secs_f64(secs)
            .map(Span)
            .map_err(|e| format!("{t:?}: {e}"))
    }
}

/// How wmtop talks to the Kafka brokers (librdkafka's `security.protocol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SecurityProtocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// TLS is in use.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// SASL is in use.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl FromStr for SecurityProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            _ => Err(format!(
                "{s:?} is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"
            )),
        }
    }
}

/// A SASL mechanism this build of librdkafka offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OauthBearer,
}

impl SaslMechanism {
    /// librdkafka's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OauthBearer => "OAUTHBEARER",
        }
    }
}

impl FromStr for SaslMechanism {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().replace('_', "-").as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OauthBearer),
            "GSSAPI" => Err("GSSAPI (Kerberos) is not built into wmtop; use PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER".into()),
            _ => Err(format!(
                "{s:?} is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER"
            )),
        }
    }
}

macro_rules! de_from_str {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw { N(i64), S(String) }
                match Raw::deserialize(d)? {
                    Raw::N(n) => n.to_string().parse(),
                    Raw::S(s) => s.parse(),
                }
                .map_err(serde::de::Error::custom)
            }
        }
    )*};
}
de_from_str!(EpochMs, Span, SecurityProtocol, SaslMechanism);
