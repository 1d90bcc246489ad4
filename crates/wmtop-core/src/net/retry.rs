//! The one retry policy (exponential backoff from 250 ms to 10 s, by the `backon` crate),
//! used by every stage that waits for a server: it retries what may pass (a refused
//! connection, a busy server), stops at once on what cannot (a refused login, a bad
//! certificate, an unknown table), and gives up when its deadline has passed, saying
//! what it waited for.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::watch;

/// An error that may pass if the operation is tried again.
pub trait Transient {
    fn transient(&self) -> bool;
}

/// How a wait ended without the operation succeeding.
#[derive(Debug, thiserror::Error)]
pub enum WaitError<E: Display> {
    #[error("stopped while waiting")]
    Stopped,
    #[error("{0}")]
    Permanent(E),
    #[error("gave up after {}s: {last}", waited.as_secs())]
    GaveUp { waited: Duration, last: E },
}

impl<E: Display> WaitError<E> {
    /// The operation's own error, if there was one.
    pub fn into_error(self) -> Option<E> {
        match self {
            WaitError::Stopped => None,
            WaitError::Permanent(e) | WaitError::GaveUp { last: e, .. } => Some(e),
        }
    }
}

/// The wait before attempt `attempt + 1`: `base` doubled per attempt, at most 10 s.
pub fn backoff(attempt: u32, base: Duration) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(Duration::from_secs(10))
}

/// Runs `op` until it succeeds, a permanent error comes, `deadline` has passed (None:
/// no deadline) or `stop` turns true. Each failed attempt is logged with `what`.
pub async fn wait_for<T, E, F, Fut>(
    what: &str,
    deadline: Option<Duration>,
    stop: &watch::Receiver<bool>,
    op: F,
) -> Result<T, WaitError<E>>
where
    E: Display + Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    wait_for_with(what, deadline, stop, op, |_, _, _| {}).await
}

/// As [`wait_for`], telling `on_retry` of each failed attempt (the error, the attempt's
/// number, the wait before the next) so a screen can show "retrying".
pub async fn wait_for_with<T, E, F, Fut>(
    what: &str,
    deadline: Option<Duration>,
    stop: &watch::Receiver<bool>,
    op: F,
    mut on_retry: impl FnMut(&E, u32, Duration),
) -> Result<T, WaitError<E>>
where
    E: Display + Transient,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let left = move || deadline.map(|d| d.saturating_sub(started.elapsed()));
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(250))
        .with_max_delay(Duration::from_secs(10))
        .without_max_times();
    let mut attempts = 0u32;
    let retry = op
        .retry(policy)
        .sleep(tokio::time::sleep)
        .when(|e: &E| e.transient() && left().is_none_or(|l| !l.is_zero()))
        // Never sleep past the deadline.
        .adjust(|_, wait| wait.map(|w| left().map_or(w, |l| w.min(l))))
        .notify(|e: &E, wait: Duration| {
            attempts += 1;
            tracing::warn!("waiting for {what} (attempt {attempts}, next in {wait:.1?}): {e}");
            on_retry(e, attempts, wait);
        });
    let mut stop = stop.clone();
    tokio::select! {
        r = retry => r.map_err(|e| {
            if e.transient() {
                WaitError::GaveUp { waited: started.elapsed(), last: e }
            } else {
                WaitError::Permanent(e)
            }
        }),
        _ = stop.wait_for(|v| *v) => Err(WaitError::Stopped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(bool);
    impl Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(if self.0 { "down" } else { "refused" })
        }
    }
    impl Transient for E {
        fn transient(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(1, base), Duration::from_millis(100));
        assert_eq!(backoff(2, base), Duration::from_millis(200));
        assert_eq!(backoff(4, base), Duration::from_millis(800));
        assert_eq!(backoff(30, base), Duration::from_secs(10));
    }

    #[tokio::test]
    async fn retries_what_may_pass_stops_at_once_on_what_cannot_and_keeps_its_deadline() {
        let (_tx, rx) = watch::channel(false);
        let mut n = 0;
        let got = wait_for("thing", None, &rx, || {
            n += 1;
            let ok = n >= 3;
            async move {
                if ok {
                    Ok(n)
                } else {
                    Err(E(true))
                }
            }
        })
        .await;
        assert_eq!(got.ok(), Some(3));

        let mut calls = 0;
        let started = Instant::now();
        let got: Result<(), _> = wait_for("thing", None, &rx, || {
            calls += 1;
            async { Err(E(false)) }
        })
        .await;
        assert!(matches!(got, Err(WaitError::Permanent(E(false)))));
        assert_eq!(calls, 1, "a permanent error is not retried");
        assert!(started.elapsed() < Duration::from_millis(200));

        let started = Instant::now();
        let got: Result<(), _> =
            wait_for("thing", Some(Duration::from_millis(700)), &rx, || async {
                Err(E(true))
            })
            .await;
        let waited = started.elapsed();
        assert!(matches!(got, Err(WaitError::GaveUp { .. })), "{got:?}");
        assert!(
            waited >= Duration::from_millis(700) && waited < Duration::from_millis(1500),
            "{waited:?}"
        );

        let (tx, rx) = watch::channel(false);
        let _ = tx.send(true);
        let got: Result<(), _> = wait_for("never", None, &rx, || async { Err(E(true)) }).await;
        assert!(matches!(got, Err(WaitError::Stopped)));
    }
}
