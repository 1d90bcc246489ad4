//! Waiting for what the pipeline depends on: exponential backoff, and a loop that
//! retries an operation (connecting to Kafka or ClickHouse at start-up) until it works
//! or the run is stopped, saying what it waits for.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

/// The wait before attempt `attempt + 1`: `base` doubled per attempt, at most 10 s.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(Duration::from_secs(10))
}

/// Retries `op` until it succeeds (Some) or `stop` turns true (None), logging each wait.
pub async fn until_ready<T, E, F, Fut>(
    what: &str,
    stop: &mut watch::Receiver<bool>,
    mut op: F,
) -> Option<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempt = 0u32;
    loop {
        if *stop.borrow() {
            return None;
        }
        match op().await {
            Ok(v) => {
                if attempt > 0 {
                    tracing::info!("{what} is up after {attempt} failed attempts");
                }
                return Some(v);
            }
            Err(e) => {
                attempt += 1;
                let wait = backoff(attempt, Duration::from_millis(250));
                tracing::warn!("waiting for {what} (attempt {attempt}, next in {wait:?}): {e}");
            }
        }
        let wait = backoff(attempt, Duration::from_millis(250));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|v| *v) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(1, base), Duration::from_millis(100));
        assert_eq!(backoff(2, base), Duration::from_millis(200));
        assert_eq!(backoff(4, base), Duration::from_millis(800));
        assert_eq!(backoff(30, base), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn retries_until_ok_and_stops_when_told() {
        let (_tx, mut rx) = watch::channel(false);
        let mut n = 0;
        let got = until_ready("thing", &mut rx, || {
            n += 1;
            let ok = n >= 3;
            async move {
                if ok {
                    Ok(n)
                } else {
                    Err("not yet")
                }
            }
        })
        .await;
        assert_eq!(got, Some(3));
        let (tx, mut rx) = watch::channel(false);
        let _ = tx.send(true);
        let got: Option<()> =
            until_ready("never", &mut rx, || async { Err::<(), _>("down") }).await;
        assert_eq!(got, None);
    }
}
