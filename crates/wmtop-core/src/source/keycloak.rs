//! Keycloak: the OAuth2 password grant, a cached token refreshed before it expires
//! (refresh token first, else a new login), and the HTTP client for Keycloak and the API
//! (TLS verified against the bundled roots and `ca_file`, unless the user opted out).
//! Tokens and passwords are [`Secret`]s and are never logged.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::secret::Secret;
use crate::config::Settings;

/// Why a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "Keycloak rejected the credentials of user {username:?} ({status}: {error}{description})"
    )]
    Rejected {
        username: String,
        status: u16,
        error: String,
        description: String,
    },
    #[error("Keycloak at {url} could not be reached: {message}")]
    Unreachable {
        url: String,
        message: String,
        /// Retrying cannot help (a TLS certificate problem).
        permanent: bool,
    },
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("Keycloak at {url} answered {status} with a body that is not a token: {message}")]
    BadAnswer {
        url: String,
        status: u16,
        message: String,
    },
    #[error("no password configured: set WMTOP_PASSWORD or `password` in the config file")]
    NoPassword,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Secret,
    expires_in: u64,
    refresh_token: Option<Secret>,
    refresh_expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorAnswer {
    error: Option<String>,
    error_description: Option<String>,
}

struct Token {
    access: Secret,
    expires_at: Instant,
    refresh: Option<(Secret, Instant)>,
}

/// When the cached token stops being used: a safety margin before its expiry, a third
/// of its life for short-lived tokens, at most 30 s.
fn margin(lifetime: Duration) -> Duration {
    (lifetime / 3).min(Duration::from_secs(30))
}

impl AuthError {
    /// Retrying cannot help.
    pub fn permanent(&self) -> bool {
        match self {
            AuthError::Rejected { .. } | AuthError::NoPassword | AuthError::Client(_) => true,
            AuthError::Unreachable { permanent, .. } => *permanent,
            AuthError::BadAnswer { status, .. } => (400..500).contains(status),
        }
    }
}

/// Builds the HTTP client used for Keycloak and the API.
pub fn http_client(settings: &Settings) -> Result<reqwest::Client, AuthError> {
    if settings.insecure {
        tracing::warn!("TLS certificate verification is OFF (--insecure): Keycloak, the API and ClickHouse are not authenticated");
    }
    let tls =
        crate::net::tls::client_config(settings.ca_file.as_deref(), "ca_file", settings.insecure)
            .map_err(|e| AuthError::Client(e.to_string()))?;
    reqwest::Client::builder()
        .timeout(settings.request_timeout.0)
        .connect_timeout(Duration::from_secs(10))
        .use_preconfigured_tls(tls)
        .user_agent(concat!("wmtop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| AuthError::Client(e.to_string()))
}

/// Hands out a valid access token, logging in or refreshing as needed.
pub struct TokenSource {
    http: reqwest::Client,
    url: String,
    client_id: String,
    client_secret: Option<Secret>,
    username: String,
    password: Secret,
    cached: Mutex<Option<Token>>,
}

impl TokenSource {
    /// A token source for the Keycloak at `keycloak_url`.
    pub fn new(http: reqwest::Client, settings: &Settings, keycloak_url: &str) -> Self {
        let base = keycloak_url.trim_end_matches('/');
        TokenSource {
            http,
            url: format!(
                "{base}/realms/{}/protocol/openid-connect/token",
                settings.realm
            ),
            client_id: settings.client_id.clone(),
            client_secret: settings.client_secret.clone(),
            username: settings.username.clone(),
            password: settings.password.clone(),
            cached: Mutex::new(None),
        }
    }

    /// A valid access token.
    pub async fn token(&self) -> Result<Secret, AuthError> {
        let mut cached = self.cached.lock().await;
        let now = Instant::now();
        if let Some(t) = cached.as_ref() {
            if now < t.expires_at {
                return Ok(t.access.clone());
            }
        }
        if let Some((refresh, until)) = cached.as_ref().and_then(|t| t.refresh.clone()) {
            if now < until {
                match self
                    .grant(&[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.expose()),
                    ])
                    .await
                {
                    Ok(t) => {
                        let access = t.access.clone();
                        *cached = Some(t);
                        tracing::debug!("access token refreshed");
                        return Ok(access);
                    }
                    Err(e) => tracing::info!("token refresh failed, logging in again: {e}"),
                }
            }
        }
        if self.password.is_empty() {
            return Err(AuthError::NoPassword);
        }
        let t = self
            .grant(&[
                ("grant_type", "password"),
                ("username", &self.username),
                ("password", self.password.expose()),
            ])
            .await?;
        let access = t.access.clone();
        *cached = Some(t);
        tracing::debug!(user = %self.username, "logged in to Keycloak");
        Ok(access)
    }

    /// Forgets the cached token (after the API refused it).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// Seconds until the cached access token expires, if there is one.
    pub async fn expires_in(&self) -> Option<Duration> {
        let cached = self.cached.lock().await;
        cached
            .as_ref()
            .map(|t| t.expires_at.saturating_duration_since(Instant::now()))
    }

    fn unreachable(&self, e: &reqwest::Error) -> AuthError {
        AuthError::Unreachable {
            url: crate::config::redact::mask_url(&self.url),
            message: describe_reqwest(e),
            permanent: crate::net::tls::classify(e).is_some_and(|f| f.permanent()),
        }
    }

    async fn grant(&self, fields: &[(&str, &str)]) -> Result<Token, AuthError> {
        let mut form: Vec<(&str, &str)> = vec![("client_id", &self.client_id)];
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret.expose()));
        }
        form.extend_from_slice(fields);
        let sent = Instant::now();
        let resp = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        if status != 200 {
            let err: ErrorAnswer = serde_json::from_slice(&body).unwrap_or(ErrorAnswer {
                error: None,
                error_description: None,
            });
            if matches!(status, 400 | 401) && err.error.is_some() {
                return Err(AuthError::Rejected {
                    username: self.username.clone(),
                    status,
                    error: err.error.unwrap_or_default(),
                    description: err
                        .error_description
                        .map(|d| format!(", {d}"))
                        .unwrap_or_default(),
                });
            }
            return Err(AuthError::BadAnswer {
                url: crate::config::redact::mask_url(&self.url),
                status,
                message: format!("{} bytes", body.len()),
            });
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| AuthError::BadAnswer {
                url: crate::config::redact::mask_url(&self.url),
                status,
                message: e.to_string(),
            })?;
        let life = Duration::from_secs(answer.expires_in);
        let refresh = answer.refresh_token.map(|r| {
            let rlife = Duration::from_secs(answer.refresh_expires_in.unwrap_or(0));
            (r, sent + rlife - margin(rlife))
        });
        Ok(Token {
            access: answer.access_token,
            expires_at: sent + life - margin(life),
            refresh,
        })
    }
}

/// A reqwest error in words, without the URL (it is named by the caller, masked) and
/// with the underlying cause; TLS and connection failures in plain words.
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    use std::error::Error;
    if let Some(f) = crate::net::tls::classify(e) {
        return f.describe("ca_file");
    }
    let mut msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "the response body was cut off or unreadable".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    crate::config::redact::mask_urls_in(&msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_third_of_short_lives_and_at_most_30s() {
        assert_eq!(margin(Duration::from_secs(3)), Duration::from_secs(1));
        assert_eq!(margin(Duration::from_secs(300)), Duration::from_secs(30));
    }
}
