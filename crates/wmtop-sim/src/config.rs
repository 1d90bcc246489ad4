//! The simulator's configuration: what it serves and checks ([`SimConfig`]: the data's
//! size and seed, the realm, client and user it accepts, token lifetimes), the JSON shape
//! of a series answer ([`Shape`]) and the faults it injects ([`Faults`]), each readable
//! from text.

use std::str::FromStr;
use std::time::Duration;

use wmtop_core::config::secret::Secret;

/// One hour in milliseconds: the records' spacing.
pub const HOUR_MS: i64 = 3_600_000;

/// Everything the simulator serves and checks. Build it with [`SimConfig::new`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// How many transactions (service endpoints) the API knows.
    pub transactions: usize,
    /// How many hourly slots the data covers.
    pub hours: usize,
    /// The seed every generated value follows from.
    pub seed: u64,
    /// The first hour, epoch milliseconds.
    pub start_ms: i64,
    /// The only `application_id` the API accepts.
    pub application_id: u64,
    /// The application's name, carried on each transaction.
    pub application_name: String,
    /// The Keycloak realm in the token path.
    pub realm: String,
    /// The only client id the token endpoint accepts.
    pub client_id: String,
    /// If set, the form's `client_secret` must match it.
    pub client_secret: Option<Secret>,
    /// The only user.
    pub username: String,
    /// That user's password.
    pub password: Secret,
    /// Lifetime of an access token (`expires_in`).
    pub token_ttl: Duration,
    /// Lifetime of a refresh token (`refresh_expires_in`).
    pub refresh_ttl: Duration,
    /// The JSON shape of a series answer.
    pub shape: Shape,
    /// The faults in force when the simulator starts.
    pub faults: Faults,
    /// A live API (`wmtop sim --live`): hours up to its clock's current hour, the last
    /// few revised between requests. None: the fixed window from `start_ms`.
    pub live: Option<Live>,
    /// Keep each series answer's body in the request log (tests compare what was stored
    /// with what was served).
    pub log_bodies: bool,
    /// Keep the generated data and the last answer between requests: repeats are served
    /// at once, at the cost of ~100 MB held. Off when the simulator runs inside a monitor
    /// that stays open, so an idle screen holds only its own figures.
    pub keep_answers: bool,
}

impl SimConfig {
    /// The reference deployment's numbers: 122 transactions, 288 hours from 1767205800000,
    /// application 31854 "WMPlatform", realm "watermelon", client and user "wmtop".
    pub fn new(password: Secret) -> Self {
        Self {
            transactions: 122,
            hours: 288,
            seed: 42,
            start_ms: 1_767_205_800_000,
            application_id: 31854,
            application_name: "WMPlatform".to_string(),
            realm: "watermelon".to_string(),
            client_id: "wmtop".to_string(),
            client_secret: None,
            username: "wmtop".to_string(),
            password,
            token_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(1800),
            shape: Shape::Array,
            faults: Faults::default(),
            keep_answers: true,
            live: None,
            log_bodies: false,
        }
    }

    /// The last hour's start plus one hour: the end (exclusive) of the data window.
    pub fn end_ms(&self) -> i64 {
        self.start_ms
            .saturating_add((self.hours as i64).saturating_mul(HOUR_MS))
    }
}

/// How a live simulator's clock runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Live {
    /// How long one of its hours lasts on the wall clock (1h: the wall clock's own).
    pub hour_length: Duration,
    /// How far behind the wall clock's hour its clock starts; with a short hour it
    /// catches up, then keeps to the wall clock's hour.
    pub behind_hours: u32,
    /// Hours, counting the current one, whose figures move between requests.
    pub revise_hours: u32,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            hour_length: Duration::from_secs(3600),
            behind_hours: 0,
            revise_hours: 3,
        }
    }
}

/// The JSON shape of a series answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// A bare array of transactions.
    Array,
    /// `{"data": [...]}`.
    Data,
    /// `{"records": [...]}`.
    Records,
    /// `{"series": [...]}`.
    Series,
}

impl Shape {
    /// The wrapping key, if any.
    pub fn key(self) -> Option<&'static str> {
        match self {
            Shape::Array => None,
            Shape::Data => Some("data"),
            Shape::Records => Some("records"),
            Shape::Series => Some("series"),
        }
    }
}

/// A shape name that is not one of `array`, `data`, `records`, `series`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown shape '{0}': expected one of array, data, records, series")]
pub struct ShapeParseError(pub String);

impl FromStr for Shape {
    type Err = ShapeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "array" => Ok(Shape::Array),
            "data" => Ok(Shape::Data),
            "records" => Ok(Shape::Records),
            "series" => Ok(Shape::Series),
            _ => Err(ShapeParseError(s.to_string())),
        }
    }
}

/// Faults applied to series answers. The counters count down by one for each series request
/// they spoil; when several are non-zero, one request spoils only the first of 5xx, 401,
/// malformed, truncated (in that order).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Delay, in milliseconds, before every series answer.
    pub latency_ms: u64,
    /// The next N series requests answer 503.
    pub fail_5xx: u32,
    /// The next N series requests answer 401 even with a valid token.
    pub fail_401: u32,
    /// The next N series answers are invalid JSON with status 200.
    pub malformed_json: u32,
    /// The next N series answers send about half the body, then cut the connection.
    pub truncated: u32,
    /// Share (0..=1) of numeric record values sent as JSON strings.
    pub strings_for_numbers: f64,
    /// Share (0..=1) of record fields left out (never timestamp, key, timestampStr).
    pub missing_fields: f64,
    /// The first N transactions each carry one more record, with no usable time (the
    /// pipeline sets it aside with its reason).
    pub unusable_records: u32,
}

/// A fault list that cannot be read; names the offending item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad fault item '{item}': {reason}")]
pub struct FaultsParseError {
    /// The item as written.
    pub item: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Faults {
    /// True when a fault changes the data itself (so a cached body cannot be used).
    pub fn touches_data(&self) -> bool {
        self.strings_for_numbers > 0.0 || self.missing_fields > 0.0 || self.unusable_records > 0
    }

    /// Checks that the shares are numbers in 0..=1.
    pub fn validate(&self) -> Result<(), FaultsParseError> {
        for (name, v) in [
            ("strings_for_numbers", self.strings_for_numbers),
            ("missing_fields", self.missing_fields),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(FaultsParseError {
                    item: format!("{name}={v}"),
                    reason: "a share must be a number from 0 to 1".to_string(),
                });
            }
        }
        Ok(())
    }
}

impl FromStr for Faults {
    type Err = FaultsParseError;

    /// Parses `name=value` items separated by commas, e.g.
    /// `latency_ms=200,fail_5xx=2,strings_for_numbers=0.1`. An empty string or `none` is no fault.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut f = Faults::default();
        let trimmed = s.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            return Ok(f);
        }
        for item in trimmed.split(',') {
            let item = item.trim();
            if item.is_empty() {
                continue;
            }
            let bad = |reason: &str| FaultsParseError {
                item: item.to_string(),
                reason: reason.to_string(),
            };
            let (name, value) = item
                .split_once('=')
                .ok_or_else(|| bad("expected name=value"))?;
            let (name, value) = (name.trim(), value.trim());
            let count = || {
                value
                    .parse::<u32>()
                    .map_err(|_| bad("expected a whole number"))
            };
            let share = || {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| (0.0..=1.0).contains(v))
                    .ok_or_else(|| bad("expected a share from 0 to 1"))
            };
            match name {
                "latency_ms" => {
                    f.latency_ms = value
                        .parse::<u64>()
                        .map_err(|_| bad("expected a whole number of milliseconds"))?
                }
                "fail_5xx" => f.fail_5xx = count()?,
                "fail_401" => f.fail_401 = count()?,
                "malformed_json" => f.malformed_json = count()?,
                "truncated" => f.truncated = count()?,
                "strings_for_numbers" => f.strings_for_numbers = share()?,
                "missing_fields" => f.missing_fields = share()?,
                "unusable_records" => f.unusable_records = count()?,
                _ => {
                    return Err(bad(
                        "unknown fault; known: latency_ms, fail_5xx, fail_401, malformed_json, \
                         truncated, strings_for_numbers, missing_fields, unusable_records",
                    ))
                }
            }
        }
        Ok(f)
    }
}
