//! The monitor's errands for the detail and dead-letter views: one transaction
//! inspected, the dead letters listed, and a re-drive followed by a fresh listing. Each
//! runs as a task of its own and answers with one event.

use super::out::Out;
use super::protocol::MonitorEvent;
use crate::clickhouse::{Ch, Loader};
use crate::config::Settings;
use crate::kafka::Kafka;

/// Dead letters a listing shows at most.
const LISTED: usize = 500;

pub(super) fn inspect(settings: &Settings, kafka: &Kafka, out: &Out, name: String) {
    let (s, k, out) = (settings.clone(), kafka.clone(), out.clone());
    tokio::spawn(async move {
        let detail = async {
            let ch = Ch::connect(&s).await.map_err(|e| e.short())?;
            crate::tools::inspect::inspect(&s, &k, &ch, &name).await
        }
        .await;
        if let Err(e) = &detail {
            tracing::warn!("inspecting {name}: {e}");
        }
        out.send(MonitorEvent::Inspected { name, detail });
    });
}

async fn listing(settings: &Settings) -> Result<Vec<crate::clickhouse::DeadLetterEntry>, String> {
    let ch = Ch::connect(settings).await.map_err(|e| e.short())?;
    ch.dead_letter_entries(LISTED, None)
        .await
        .map_err(|e| e.short())
}

pub(super) fn list_dead_letters(settings: &Settings, out: &Out) {
    let (s, out) = (settings.clone(), out.clone());
    tokio::spawn(async move {
        out.send(MonitorEvent::DeadLetters(listing(&s).await));
    });
}

pub(super) fn redrive(settings: &Settings, out: &Out) {
    let (s, out) = (settings.clone(), out.clone());
    tokio::spawn(async move {
        let report = async {
            let ch = Ch::connect(&s).await.map_err(|e| e.short())?;
            let loader = Loader::prepare(ch, &s).await.map_err(|e| e.to_string())?;
            crate::tools::redrive::redrive(&s, &loader)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if let Err(e) = &report {
            tracing::warn!("re-drive: {e}");
        }
        out.send(MonitorEvent::Redriven(report));
        out.send(MonitorEvent::DeadLetters(listing(&s).await));
    });
}
