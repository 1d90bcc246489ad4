//! A consume run's start: waiting, with the run's deadline, for ClickHouse (creating what
//! loading needs) and for Kafka (the topic) side by side, either wait ending the run with
//! what it waited for when it does not succeed.

use tokio::sync::watch;

use super::summary::End;
use crate::clickhouse::{Ch, Loader};
use crate::config::redact::mask_url;
use crate::config::Settings;
use crate::kafka::Kafka;
use crate::net::retry::wait_for;

/// Waits for ClickHouse (creating what loading needs) and for Kafka (the topic).
pub(super) async fn start(
    settings: &Settings,
    stop: &watch::Receiver<bool>,
) -> Result<(Loader, Kafka), End> {
    let deadline = Some(settings.max_wait.0);
    let url = mask_url(&settings.clickhouse_url);
    let clickhouse = async {
        wait_for(&format!("ClickHouse at {url}"), deadline, stop, || async {
            let ch = Ch::connect(settings).await?;
            Loader::prepare(ch, settings).await
        })
        .await
        .map_err(|e| End::from_clickhouse(e, &url))
    };
    let kafka = Kafka::new(settings);
    let brokers = async {
        kafka
            .ready_until(stop)
            .await
            .map_err(|e| End::from_kafka(e, &settings.kafka_brokers))
    };
    // Neither waits for the other; the first to fail for good ends the start.
    let (loader, _) = tokio::try_join!(clickhouse, brokers)?;
    Ok((loader, kafka))
}
