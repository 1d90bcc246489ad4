//! `wmtop produce`: fetch (or read a saved answer), then publish one message per
//! transaction; the fetch is shared with `run`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::bail;
use serde_json::json;
use tokio::sync::watch;
use wmtop_core::config::{Settings, Source, Window};
use wmtop_core::kafka::{produce, Kafka};
use wmtop_core::source::api::{self, Answer, ApiClient};
use wmtop_core::source::keycloak::{http_client, TokenSource};

use super::{print_line, source::with_simulator, Signals};
use crate::cli::ProduceArgs;

pub struct Fetched {
    pub answer: Answer,
    pub fetch_ms: u64,
    pub attempts: u32,
    pub saved_to: Option<String>,
    /// The window asked for (none for a saved answer).
    pub window: Option<Window>,
}

pub async fn fetch(
    settings: &Settings,
    a: &ProduceArgs,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<Fetched> {
    if let Some(path) = &a.from_file {
        let started = Instant::now();
        let answer = api::read_answer(path)?;
        return Ok(Fetched {
            answer,
            fetch_ms: started.elapsed().as_millis() as u64,
            attempts: 0,
            saved_to: None,
            window: None,
        });
    }
    let Source::Api {
        api_url,
        keycloak_url,
    } = settings.source()
    else {
        bail!("no API to fetch from");
    };
    let http = http_client(settings)?;
    let tokens = Arc::new(TokenSource::new(http.clone(), settings, &keycloak_url));
    let client = ApiClient::new(http, tokens, settings, &api_url);
    let save = a.save.clone().unwrap_or_else(|| settings.last_fetch_path());
    let report = client
        .fetch(settings.window(), Some(&save), stop, |_, _, _| {})
        .await?;
    Ok(Fetched {
        answer: report.answer,
        fetch_ms: report.took.as_millis() as u64,
        attempts: report.attempts,
        saved_to: Some(save.display().to_string()),
        window: Some(report.window),
    })
}

pub async fn produce(settings: &Settings, a: ProduceArgs) -> anyhow::Result<ExitCode> {
    let signals = Signals::listen();
    let (settings, sim) = if a.from_file.is_some() {
        (settings.clone(), None)
    } else {
        with_simulator(settings, 122).await?
    };
    let simulator = sim.as_ref().map(|s| s.url());
    let outcome = async {
        let fetched = fetch(&settings, &a, &signals.stop).await?;
        let kafka = Kafka::new(&settings);
        let published = produce::publish(&kafka, &fetched.answer).await;
        anyhow::Ok((fetched, published))
    }
    .await;
    if let Some(s) = sim {
        s.shutdown().await;
    }
    let (fetched, published) = match outcome {
        Ok(ok) => ok,
        Err(e) => {
            print_line(json!({"error": format!("{e:#}"), "simulator": simulator}));
            return Err(e);
        }
    };
    let (code, report, error) = match published {
        Ok(r) => (ExitCode::SUCCESS, r, None),
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            (ExitCode::FAILURE, *report, Some(first))
        }
        Err(e) => {
            print_line(json!({"error": e.to_string(), "simulator": simulator}));
            return Err(e.into());
        }
    };
    print_line(json!({
        "transactions": report.transactions,
        "records": report.records,
        "set_aside": report.set_aside,
        "messages_delivered": report.messages_delivered,
        "messages_failed": report.messages_failed,
        "bytes": report.bytes,
        "topic": settings.topic,
        "topic_created": report.topic_created,
        "fetch_ms": fetched.fetch_ms,
        "fetch_attempts": fetched.attempts,
        "publish_ms": report.publish_ms,
        "saved_to": fetched.saved_to,
        "window": fetched.window.map(|w| w.json()),
        "simulator": simulator,
        "error": error,
    }));
    Ok(code)
}
