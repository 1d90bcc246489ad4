//! The simulator's HTTP server: hyper 1 over tokio, one task per connection, graceful stop.
//! Owns the routes (token endpoint, series API, `/_sim/faults`, `/_sim/stats`,
//! `/_sim/requests`), the series parameter checks, the fault counters, the counts and
//! log of what was answered ([`SimStats`], [`SeriesRequest`]), a live simulator's clock
//! and the cache of the last answer body.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::auth::{lookup, parse_pairs, Tokens};
use crate::config::{Faults, SimConfig};
use crate::data::{dataset, SimTransaction};
use crate::wire::{self, DataFaults};

/// The series API path: the one the client asks for.
pub use wmtop_core::source::api::SERIES_PATH;

/// Largest request body read (token forms, fault updates).
const MAX_BODY: usize = 64 * 1024;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The error a truncated answer's body stream ends with.
#[derive(Debug, thiserror::Error)]
#[error("simulated truncation: connection cut mid-body")]
struct Truncated;

/// Counts of what the simulator has answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SimStats {
    /// Requests to the token endpoint (any outcome).
    pub token_requests: u64,
    /// Requests to the series endpoint (any outcome).
    pub series_requests: u64,
    /// Series requests answered 200 with a complete, well-formed body.
    pub series_ok: u64,
}

/// One series request as the simulator answered it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SeriesRequest {
    pub start_time: i64,
    pub end_time: i64,
    /// ok, 5xx, 401, malformed or truncated.
    pub outcome: String,
    /// Records in the answer (a live simulator's answers only).
    pub records: Option<usize>,
    /// The newest record's hour, if any.
    pub newest_ms: Option<i64>,
    /// A live simulator's current hour when it answered.
    pub current_ms: Option<i64>,
    /// The body, when the simulator keeps them (`log_bodies`).
    #[serde(skip)]
    pub body: Option<Bytes>,
}

/// Requests kept in the log.
const LOGGED: usize = 1000;

/// A live simulator's clock: its current hour from the wall clock, behind it at first
/// and catching up one hour per `hour_length`.
#[derive(Debug)]
struct Clock {
    started: std::time::Instant,
    /// The wall clock's hour when it started, less `behind_hours`.
    start_hour_ms: i64,
    /// The first hour with data: `hours` before the wall clock's hour at start.
    first_ms: i64,
    live: crate::config::Live,
}

fn wall_hour() -> i64 {
    jiff::Timestamp::now()
        .as_millisecond()
        .div_euclid(crate::config::HOUR_MS)
        * crate::config::HOUR_MS
}

impl Clock {
    fn new(cfg: &SimConfig, live: crate::config::Live) -> Clock {
        let hour = wall_hour();
        Clock {
            started: std::time::Instant::now(),
            start_hour_ms: hour - i64::from(live.behind_hours) * crate::config::HOUR_MS,
            first_ms: hour - cfg.hours as i64 * crate::config::HOUR_MS,
            live,
        }
    }

    fn view(&self, revision: u64) -> crate::data::LiveView {
        let per_hour = self.live.hour_length.as_secs_f64().max(0.001);
        let passed = (self.started.elapsed().as_secs_f64() / per_hour).floor() as i64;
        let current = (self.start_hour_ms + passed * crate::config::HOUR_MS).min(wall_hour());
        crate::data::LiveView {
            first_ms: self.first_ms,
            current_ms: current,
            revise_hours: self.live.revise_hours,
            revision,
        }
    }
}

/// Everything a running simulator shares between connections.
pub struct State {
    cfg: SimConfig,
    clock: Option<Clock>,
    log: Mutex<std::collections::VecDeque<SeriesRequest>>,
    data: OnceLock<Vec<SimTransaction>>,
    tokens: Tokens,
    faults: Mutex<Faults>,
    cache: Mutex<Option<(i64, i64, Bytes)>>,
    token_requests: AtomicU64,
    series_requests: AtomicU64,
    series_ok: AtomicU64,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("cfg", &self.cfg)
            .field("tokens", &self.tokens)
            .field("faults", &self.faults())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl State {
    /// A fresh state for `cfg`, with `cfg.faults` in force.
    pub fn new(cfg: SimConfig) -> Self {
        Self {
            tokens: Tokens::new(cfg.seed),
            clock: cfg.live.map(|l| Clock::new(&cfg, l)),
            log: Mutex::new(Default::default()),
            faults: Mutex::new(cfg.faults.clone()),
            cfg,
            data: OnceLock::new(),
            cache: Mutex::new(None),
            token_requests: AtomicU64::new(0),
            series_requests: AtomicU64::new(0),
            series_ok: AtomicU64::new(0),
        }
    }

    /// Replaces the faults.
    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap_or_else(|p| p.into_inner()) = f;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The counters.
    pub fn stats(&self) -> SimStats {
        SimStats {
            token_requests: self.token_requests.load(Ordering::Relaxed),
            series_requests: self.series_requests.load(Ordering::Relaxed),
            series_ok: self.series_ok.load(Ordering::Relaxed),
        }
    }

    /// The series requests logged, oldest first.
    pub fn requests(&self) -> Vec<SeriesRequest> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }

    fn log(&self, mut r: SeriesRequest) {
        if !self.cfg.log_bodies {
            r.body = None;
        }
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= LOGGED {
            log.pop_front();
        }
        log.push_back(r);
    }

    /// A live simulator's answer for a window at this request: (body, records, newest
    /// hour, current hour). Call from a blocking context.
    fn live_body(
        &self,
        clock: &Clock,
        start: i64,
        end: i64,
        df: Option<DataFaults>,
        revision: u64,
    ) -> Result<(Bytes, usize, Option<i64>, i64), String> {
        let view = clock.view(revision);
        let data = crate::data::live_dataset(&self.cfg, &view, start, end);
        let records = data.iter().map(|t| t.records.len()).sum();
        let newest = data
            .iter()
            .filter_map(|t| t.records.last().map(|r| r.timestamp))
            .max();
        let body = wire::body(&data, start, end, self.cfg.shape, df)
            .map(Bytes::from)
            .map_err(|e| format!("serializing the answer failed: {e}"))?;
        Ok((body, records, newest, view.current_ms))
    }

    /// The answer body for a window, from the cache when answers are kept and no data
    /// fault is set (call from a blocking context).
    fn body(&self, start: i64, end: i64, df: Option<DataFaults>) -> Result<Bytes, String> {
        let keep = self.cfg.keep_answers && df.is_none();
        if keep {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((s, e, b)) = cache.as_ref() {
                if (*s, *e) == (start, end) {
                    return Ok(b.clone());
                }
            }
        }
        let generated;
        let data = if self.cfg.keep_answers {
            self.data.get_or_init(|| dataset(&self.cfg))
        } else {
            generated = dataset(&self.cfg);
            &generated
        };
        let body = wire::body(data, start, end, self.cfg.shape, df)
            .map(Bytes::from)
            .map_err(|e| format!("serializing the answer failed: {e}"))?;
        if keep {
            *self.cache.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((start, end, body.clone()));
        }
        Ok(body)
    }
}

/// Serves until `shutdown` resolves, then lets open requests finish (a few seconds at most).
pub async fn serve(
    listener: tokio::net::TcpListener,
    cfg: SimConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_state(listener, Arc::new(State::new(cfg)), shutdown).await
}

/// [`serve`] with a state the caller keeps a handle on.
pub async fn serve_state(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    wmtop_core::net::http::serve(
        listener,
        move |req| {
            let state = state.clone();
            async move {
                match handle(state, req).await {
                    Ok(resp) => resp,
                    Err(never) => match never {},
                }
            }
        },
        shutdown,
        "simulator",
    )
    .await
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut resp = Response::new(full(v.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn not_found() -> Response<Body> {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"error": "not_found", "error_description": "no such resource"}),
    )
}

async fn read_body(body: Incoming) -> Result<Bytes, Response<Body>> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "bad_request", "message": "request body unreadable or too large"}),
        )),
    }
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    tracing::debug!(method = %req.method(), %path, "simulator request");
    let resp = if let Some(rest) = path.strip_prefix("/realms/") {
        match rest.split_once('/') {
            Some((realm, "protocol/openid-connect/token")) if req.method() == Method::POST => {
                state.token_requests.fetch_add(1, Ordering::Relaxed);
                if realm != state.cfg.realm {
                    json_response(
                        StatusCode::NOT_FOUND,
                        &json!({"error": "Realm does not exist"}),
                    )
                } else {
                    match read_body(req.into_body()).await {
                        Ok(b) => {
                            let form = String::from_utf8_lossy(&b);
                            let (status, v) = state.tokens.answer(&state.cfg, &form);
                            let mut r = json_response(status, &v);
                            r.headers_mut()
                                .insert("cache-control", HeaderValue::from_static("no-store"));
                            r
                        }
                        Err(r) => r,
                    }
                }
            }
            _ => not_found(),
        }
    } else if path == SERIES_PATH && req.method() == Method::GET {
        series(&state, &req).await
    } else if path == "/_sim/faults" && req.method() == Method::GET {
        json_response(StatusCode::OK, &json!(state.faults()))
    } else if path == "/_sim/faults" && req.method() == Method::PUT {
        put_faults(&state, req.into_body()).await
    } else if path == "/_sim/stats" && req.method() == Method::GET {
        json_response(StatusCode::OK, &json!(state.stats()))
    } else if path == "/_sim/requests" && req.method() == Method::GET {
        json_response(StatusCode::OK, &json!(state.requests()))
    } else {
        not_found()
    };
    Ok(resp)
}

async fn put_faults(state: &State, body: Incoming) -> Response<Body> {
    let bytes = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let parsed = serde_json::from_slice::<Faults>(&bytes)
        .map_err(|e| format!("invalid faults: {e}"))
        .and_then(|f| f.validate().map(|()| f).map_err(|e| e.to_string()));
    match parsed {
        Ok(f) => {
            state.set_faults(f.clone());
            json_response(StatusCode::OK, &json!(f))
        }
        Err(message) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "bad_request", "message": message}),
        ),
    }
}

fn bad_request(message: String) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": "bad_request", "message": message}),
    )
}

fn unauthorized(description: &str) -> Response<Body> {
    let mut r = json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"error": "unauthorized", "error_description": description}),
    );
    r.headers_mut()
        .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

/// Reads an epoch-millisecond parameter.
fn time_param(pairs: &[(String, String)], name: &str) -> Result<i64, String> {
    match lookup(pairs, name) {
        None | Some("") => Err(format!("{name} is required (epoch milliseconds)")),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("{name} must be an integer (epoch milliseconds), got '{v}'")),
    }
}

/// Checks the series query; the window on success, the 400 message otherwise.
fn check_params(cfg: &SimConfig, query: &str) -> Result<(i64, i64), String> {
    let pairs = parse_pairs(query);
    match lookup(&pairs, "application_id") {
        None | Some("") => return Err("application_id is required".to_string()),
        Some(v) => match v.trim().parse::<u64>() {
            Err(_) => return Err(format!("application_id must be a number, got '{v}'")),
            Ok(id) if id != cfg.application_id => {
                return Err(format!("application_id {id} is not a known application"))
            }
            Ok(_) => {}
        },
    }
    match lookup(&pairs, "range") {
        Some("CUSTOM") => {}
        None => return Err("range is required and must be CUSTOM".to_string()),
        Some(v) => return Err(format!("range must be CUSTOM, got '{v}'")),
    }
    let start = time_param(&pairs, "start_time")?;
    let end = time_param(&pairs, "end_time")?;
    if start >= end {
        return Err(format!(
            "start_time ({start}) must be before end_time ({end})"
        ));
    }
    match lookup(&pairs, "index") {
        Some("HOURLY") => {}
        None => return Err("index is required and must be HOURLY".to_string()),
        Some(v) => return Err(format!("index must be HOURLY, got '{v}'")),
    }
    Ok((start, end))
}

/// The fault that spoils one request.
enum Spoil {
    None,
    Fail5xx,
    Fail401,
    Malformed,
    Truncated,
}

impl Spoil {
    fn name(&self) -> &'static str {
        match self {
            Spoil::None => "ok",
            Spoil::Fail5xx => "5xx",
            Spoil::Fail401 => "401",
            Spoil::Malformed => "malformed",
            Spoil::Truncated => "truncated",
        }
    }
}

/// Takes one count off the first non-zero fault counter; returns which, and the data faults.
fn take_fault(state: &State) -> (Spoil, Option<DataFaults>) {
    let mut f = state.faults.lock().unwrap_or_else(|p| p.into_inner());
    let spoil = if f.fail_5xx > 0 {
        f.fail_5xx -= 1;
        Spoil::Fail5xx
    } else if f.fail_401 > 0 {
        f.fail_401 -= 1;
        Spoil::Fail401
    } else if f.malformed_json > 0 {
        f.malformed_json -= 1;
        Spoil::Malformed
    } else if f.truncated > 0 {
        f.truncated -= 1;
        Spoil::Truncated
    } else {
        Spoil::None
    };
    (spoil, DataFaults::of(&f, state.cfg.seed))
}

async fn series(state: &Arc<State>, req: &Request<Incoming>) -> Response<Body> {
    let revision = state.series_requests.fetch_add(1, Ordering::Relaxed) + 1;
    let latency = state.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }

    if let Some(refused) = check_bearer(state, req) {
        return refused;
    }

    let (start, end) = match check_params(&state.cfg, req.uri().query().unwrap_or("")) {
        Ok(w) => w,
        Err(message) => return bad_request(message),
    };

    let (spoil, df) = take_fault(state);
    let mut logged = SeriesRequest {
        start_time: start,
        end_time: end,
        outcome: spoil.name().to_string(),
        records: None,
        newest_ms: None,
        current_ms: None,
        body: None,
    };
    match spoil {
        Spoil::Fail5xx => {
            state.log(logged);
            return json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "service unavailable (simulated)"}),
            );
        }
        Spoil::Fail401 => {
            state.log(logged);
            return unauthorized("the access token was rejected (simulated)");
        }
        _ => {}
    }

    let st = state.clone();
    let made = tokio::task::spawn_blocking(move || match &st.clock {
        Some(clock) => st
            .live_body(clock, start, end, df, revision)
            .map(|(b, records, newest, current)| (b, Some(records), newest, Some(current))),
        None => st.body(start, end, df).map(|b| (b, None, None, None)),
    })
    .await;
    let body = match made {
        Ok(Ok((b, records, newest, current))) => {
            logged.records = records;
            logged.newest_ms = newest;
            logged.current_ms = current;
            logged.body = Some(b.clone());
            state.log(logged);
            b
        }
        Ok(Err(message)) => {
            tracing::warn!(%message, "simulator could not build an answer");
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "internal", "message": message}),
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, "simulator answer task failed");
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "internal", "message": "answer task failed"}),
            );
        }
    };

    let mut resp = spoiled(state, &spoil, body);
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The 401 for a request without a valid bearer token, or None.
fn check_bearer(state: &State, req: &Request<Incoming>) -> Option<Response<Body>> {
    let token = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        });
    match token {
        None => Some(unauthorized("a bearer token is required")),
        Some(t) if !state.tokens.access_ok(t) => {
            Some(unauthorized("the access token is invalid or has expired"))
        }
        Some(_) => None,
    }
}

/// The answer's response, spoilt as the fault says (malformed, truncated) or whole.
fn spoiled(state: &State, spoil: &Spoil, body: Bytes) -> Response<Body> {
    match spoil {
        Spoil::Malformed => {
            // The first half of the real answer, then garbage: a 200 that is not JSON.
            let mut bad = body.slice(..body.len() / 2).to_vec();
            bad.extend_from_slice(b"\"@@ not json ,,]}");
            Response::new(full(bad))
        }
        Spoil::Truncated => {
            let half = body.slice(..body.len() / 2);
            // Send half the body as a chunk, give it time to reach the client, then fail the
            // stream so hyper cuts the connection without the closing chunk.
            let frames = futures_util::stream::unfold(0u8, move |step| {
                let half = half.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, BoxError>(Frame::data(half)), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            Some((Err(Box::new(Truncated) as BoxError), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::new(BodyExt::boxed(StreamBody::new(frames)))
        }
        _ => {
            state.series_ok.fetch_add(1, Ordering::Relaxed);
            Response::new(full(body))
        }
    }
}
