//! A reload on demand: fetch the series from the API (through Keycloak), then publish one
//! message per transaction, each stage's state and the per-transaction figures reported
//! as they come.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::out::Out;
use super::protocol::{MonitorEvent, Stage, StageState};
use crate::kafka::{produce, Kafka};
use crate::source::api::{ApiClient, ApiError};

/// Fetches the series and publishes them, telling each stage's state as it goes.
pub(super) async fn run_reload(
    kafka: Kafka,
    api: Arc<ApiClient>,
    out: Out,
    stop: watch::Receiver<bool>,
) {
    out.send(MonitorEvent::Reloading(true));
    let save = kafka.settings().last_fetch_path();
    let report = api
        .fetch(Some(&save), &stop, |e, attempt, _| {
            let stage = match e {
                ApiError::Auth(_) => Stage::Keycloak,
                _ => Stage::Api,
            };
            out.stage(stage, StageState::Retrying(attempt), Some(e.to_string()));
        })
        .await;
    out.send(MonitorEvent::TokenExpiry(
        api.token_expires_in().await.map(|d| Instant::now() + d),
    ));
    let report = match report {
        Ok(r) => {
            out.stage(Stage::Keycloak, StageState::Ok, None);
            out.stage(Stage::Api, StageState::Ok, None);
            r
        }
        Err(e) => {
            let stage = match &e {
                ApiError::Auth(_) => Stage::Keycloak,
                ApiError::GaveUp { last, .. } if matches!(**last, ApiError::Auth(_)) => {
                    Stage::Keycloak
                }
                _ => Stage::Api,
            };
            out.stage(stage, StageState::Down, Some(e.to_string()));
            out.send(MonitorEvent::Reloading(false));
            return;
        }
    };
    let answer = report.answer;
    let accounting = {
        let a = answer.clone();
        tokio::task::spawn_blocking(move || a.accounting())
            .await
            .unwrap_or_default()
    };
    out.send(MonitorEvent::Fetched {
        per_transaction: accounting.into_iter().collect(),
        took: report.took,
        window: report.window,
    });
    let started = Instant::now();
    match produce::publish(&kafka, &answer).await {
        Ok(p) => {
            out.stage(Stage::Kafka, StageState::Ok, None);
            out.send(published(&p, started.elapsed()));
        }
        Err(produce::PublishError::Undelivered { report, first, .. }) => {
            out.stage(Stage::Kafka, StageState::Down, Some(first));
            out.send(published(&report, started.elapsed()));
        }
        Err(e) => out.stage(Stage::Kafka, StageState::Down, Some(e.to_string())),
    }
    drop(answer);
    crate::runtime::memory::give_back();
    out.send(MonitorEvent::Reloading(false));
}

fn published(p: &produce::PublishReport, took: Duration) -> MonitorEvent {
    let mut per: BTreeMap<String, u64> = BTreeMap::new();
    for (name, n) in &p.per_transaction {
        *per.entry(name.clone()).or_default() += *n as u64;
    }
    MonitorEvent::Published {
        per_transaction: per.into_iter().collect(),
        delivered: p.messages_delivered,
        failed: p.messages_failed,
        took,
    }
}
