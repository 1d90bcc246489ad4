//! The value types settings are given in: window times (epoch milliseconds, RFC 3339 or
//! relative to the clock) and the window they make, durations ("5s", "250ms"), Kafka's
//! security protocol and SASL mechanism; each read from text in flags, environment and
//! file alike.

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

/// One end of the fetch window: a fixed time (epoch milliseconds or RFC 3339, used as
/// given) or a time relative to the clock (`now`, `now-12d`, `-36h`, `today`,
/// `today-1d`), worked out again at each fetch and aligned down to the hour, as the API's
/// HOURLY index counts hours. Days are 24 hours: times are UTC, with no daylight saving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moment {
    /// Epoch milliseconds.
    At(i64),
    /// The clock plus this many milliseconds (negative: earlier).
    Now(i64),
    /// Midnight UTC of the current day plus this many milliseconds.
    Today(i64),
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The forms a window time is accepted in, for error messages.
const MOMENT_FORMS: &str = "epoch milliseconds, an RFC 3339 time (2026-01-01T00:00:00Z), \
     now, now-12d, -36h, today or today-1d (units m, h, d, w)";

impl Moment {
    /// The time in epoch milliseconds when the clock reads `now_ms`.
    pub fn resolve(self, now_ms: i64) -> i64 {
        match self {
            Moment::At(ms) => ms,
            Moment::Now(offset) => (now_ms + offset).div_euclid(HOUR_MS) * HOUR_MS,
            Moment::Today(offset) => {
                (now_ms.div_euclid(DAY_MS) * DAY_MS + offset).div_euclid(HOUR_MS) * HOUR_MS
            }
        }
    }

    /// A relative time (worked out at each fetch).
    pub fn is_relative(self) -> bool {
        !matches!(self, Moment::At(_))
    }
}

/// A signed offset such as `-12d`, `+3h` or `-90m`, in milliseconds.
fn offset_ms(t: &str) -> Option<i64> {
    let (sign, rest) = match t.as_bytes().first()? {
        b'-' => (-1, &t[1..]),
        b'+' => (1, &t[1..]),
        _ => return None,
    };
    Some(sign * length_ms(rest.trim())?)
}

/// A length such as `12d`, `36h`, `90m` or `2w`, in milliseconds (more than zero).
fn length_ms(t: &str) -> Option<i64> {
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit = match unit.trim() {
        "m" => 60_000,
        "h" => HOUR_MS,
        "d" => DAY_MS,
        "w" => 7 * DAY_MS,
        _ => return None,
    };
    n.checked_mul(unit).filter(|ms| *ms > 0)
}

/// A length in milliseconds as it can be given again: in the largest of `d`, `h` and `m`
/// that divides it (`12d`, `36h`, `90m`).
fn length_text(ms: i64) -> String {
    let (n, unit) = [(DAY_MS, "d"), (HOUR_MS, "h"), (60_000, "m")]
        .into_iter()
        .find(|(u, _)| ms % u == 0)
        .map_or((ms / 60_000, "m"), |(u, name)| (ms / u, name));
    format!("{n}{unit}")
}

impl FromStr for Moment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim();
        if let Ok(EpochMs(ms)) = t.parse() {
            return Ok(Moment::At(ms));
        }
        let relative = |rest: &str| {
            let rest = rest.trim();
            if rest.is_empty() {
                Some(0)
            } else {
                offset_ms(rest)
            }
        };
        let lower = t.to_ascii_lowercase();
        let parsed = if let Some(rest) = lower.strip_prefix("now") {
            relative(rest).map(Moment::Now)
        } else if let Some(rest) = lower.strip_prefix("today") {
            relative(rest).map(Moment::Today)
        } else {
            offset_ms(&lower).map(Moment::Now)
        };
        parsed.ok_or_else(|| format!("{t:?} is not a time: give {MOMENT_FORMS}"))
    }
}

impl std::fmt::Display for Moment {
    /// As it can be given again: epoch milliseconds, or the relative form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (base, offset) = match *self {
            Moment::At(ms) => return write!(f, "{ms}"),
            Moment::Now(o) => ("now", o),
            Moment::Today(o) => ("today", o),
        };
        f.write_str(base)?;
        if offset != 0 {
            let sign = if offset < 0 { "-" } else { "+" };
            write!(f, "{sign}{}", length_text(offset.abs()))?;
        }
        Ok(())
    }
}

/// How far back `--range` reaches from now: `12d`, `36h`, `90m`, `2w`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range(pub i64);

impl FromStr for Range {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        length_ms(s.trim()).map(Range).ok_or_else(|| {
            format!(
                "{:?} is not a length of time (like 12d, 36h, 90m, 2w)",
                s.trim()
            )
        })
    }
}

impl Range {
    /// The start it stands for: `now-12d`.
    pub fn start(self) -> Moment {
        Moment::Now(-self.0)
    }
}

impl std::fmt::Display for Range {
    /// The length as given back: `12d`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&length_text(self.0))
    }
}

/// The fetch window worked out at one moment: epoch milliseconds, start before end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    /// Both ends in RFC 3339, UTC.
    pub fn rfc3339(&self) -> (String, String) {
        let show = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms).map_or_else(|_| ms.to_string(), |t| t.to_string())
        };
        (show(self.start_ms), show(self.end_ms))
    }

    /// As JSON: both ends in epoch milliseconds and in RFC 3339, UTC.
    pub fn json(&self) -> serde_json::Value {
        let (start, end) = self.rfc3339();
        serde_json::json!({
            "start": start, "end": end, "start_ms": self.start_ms, "end_ms": self.end_ms,
        })
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
de_from_str!(
    EpochMs,
    Moment,
    Range,
    Span,
    SecurityProtocol,
    SaslMechanism
);
