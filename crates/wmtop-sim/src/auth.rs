//! The simulator's Keycloak side: form and query decoding, the token store (issued access
//! and refresh tokens with their expiry) and the token endpoint's answers. Tokens and the
//! password are never logged nor put into an answer other than the one that issues them.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde_json::json;

use crate::config::SimConfig;
use crate::rng::{hash_words, SplitMix64};

/// Parses a form or query string (`a=1&b=two`, `%XX` escapes, `+` as space) into pairs,
/// with the `form_urlencoded` crate; the first value of a repeated name wins on lookup.
pub fn parse_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The value of `name` in parsed pairs.
pub fn lookup<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Access,
    Refresh,
}

/// Issued tokens and their expiry. Its `Debug` shows how many, never a token.
pub struct Tokens {
    inner: Mutex<TokenInner>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issued", &self.lock().issued.len())
            .finish()
    }
}

struct TokenInner {
    rng: SplitMix64,
    counter: u64,
    issued: HashMap<String, (Kind, Instant)>,
}

/// A token endpoint answer: status and JSON body.
pub type Answer = (StatusCode, serde_json::Value);

impl Tokens {
    /// An empty store whose tokens are drawn from `seed` mixed with the clock.
    pub fn new(seed: u64) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Self {
            inner: Mutex::new(TokenInner {
                rng: SplitMix64::new(hash_words(&[seed, nanos, 0x0074_6f6b])),
                counter: 0,
                issued: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TokenInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn mint(inner: &mut TokenInner, kind: Kind, ttl: Duration) -> String {
        inner.counter += 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let words = [
            inner.rng.next_u64(),
            inner.rng.next_u64() ^ nanos,
            hash_words(&[inner.counter, nanos]),
            inner.rng.next_u64(),
        ];
        let prefix = match kind {
            Kind::Access => "wmsa",
            Kind::Refresh => "wmsr",
        };
        let token = format!(
            "{prefix}.{:016x}{:016x}{:016x}{:016x}",
            words[0], words[1], words[2], words[3]
        );
        let expires = Instant::now() + ttl;
        inner.issued.insert(token.clone(), (kind, expires));
        token
    }

    fn issue(&self, cfg: &SimConfig) -> Answer {
        let mut inner = self.lock();
        let now = Instant::now();
        inner.issued.retain(|_, (_, exp)| *exp > now);
        let access = Self::mint(&mut inner, Kind::Access, cfg.token_ttl);
        let refresh = Self::mint(&mut inner, Kind::Refresh, cfg.refresh_ttl);
        (
            StatusCode::OK,
            json!({
                "access_token": access,
                "expires_in": cfg.token_ttl.as_secs(),
                "refresh_token": refresh,
                "refresh_expires_in": cfg.refresh_ttl.as_secs(),
                "token_type": "Bearer",
                "not-before-policy": 0,
                "scope": "profile email",
            }),
        )
    }

    fn valid(&self, token: &str, kind: Kind) -> bool {
        let inner = self.lock();
        matches!(inner.issued.get(token), Some((k, exp)) if *k == kind && *exp > Instant::now())
    }

    /// True for an access token the sim issued that has not expired.
    pub fn access_ok(&self, token: &str) -> bool {
        self.valid(token, Kind::Access)
    }

    /// Answers a token request with the form body `form`.
    pub fn answer(&self, cfg: &SimConfig, form: &str) -> Answer {
        let pairs = parse_pairs(form);
        let client_ok = lookup(&pairs, "client_id") == Some(cfg.client_id.as_str())
            && match &cfg.client_secret {
                None => true,
                Some(s) => lookup(&pairs, "client_secret") == Some(s.expose()),
            };
        if !client_ok {
            return (
                StatusCode::BAD_REQUEST,
                json!({
                    "error": "invalid_client",
                    "error_description": "Invalid client or Invalid client credentials",
                }),
            );
        }
        // As Keycloak does: the client is checked first, then the grant type.
        let grant = lookup(&pairs, "grant_type");
        if !matches!(grant, Some("password") | Some("refresh_token")) {
            return (
                StatusCode::BAD_REQUEST,
                json!({
                    "error": "unsupported_grant_type",
                    "error_description": "Unsupported grant_type",
                }),
            );
        }
        if grant == Some("password") {
            let user_ok = lookup(&pairs, "username") == Some(cfg.username.as_str());
            let pass_ok = lookup(&pairs, "password") == Some(cfg.password.expose());
            if !(user_ok && pass_ok) {
                return (
                    StatusCode::UNAUTHORIZED,
                    json!({
                        "error": "invalid_grant",
                        "error_description": "Invalid user credentials",
                    }),
                );
            }
            return self.issue(cfg);
        }
        match lookup(&pairs, "refresh_token") {
            Some(t) if self.valid(t, Kind::Refresh) => self.issue(cfg),
            _ => (
                StatusCode::BAD_REQUEST,
                json!({
                    "error": "invalid_grant",
                    "error_description": "Token is not active",
                }),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_and_plus() {
        let p = parse_pairs("a=a%20b+c%2Bd%3D%26&pct=100%&bad=%zz&cafe=caf%C3%A9");
        assert_eq!(lookup(&p, "a"), Some("a b c+d=&"));
        assert_eq!(lookup(&p, "pct"), Some("100%"));
        assert_eq!(lookup(&p, "bad"), Some("%zz"));
        assert_eq!(lookup(&p, "cafe"), Some("café"));
        let p = parse_pairs("grant_type=password&password=p%40ss+word&empty=&flag");
        assert_eq!(lookup(&p, "password"), Some("p@ss word"));
        assert_eq!(lookup(&p, "empty"), Some(""));
        assert_eq!(lookup(&p, "flag"), Some(""));
        assert_eq!(lookup(&p, "nope"), None);
    }
}
