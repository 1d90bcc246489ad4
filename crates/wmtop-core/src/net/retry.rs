//! The one retry policy, used by every stage that waits for a server: exponential backoff
//! by the `backon` crate (a base wait doubled per attempt, at most 10 s), which retries
//! what may pass (a refused connection, a busy server), stops at once on what cannot (a
//! refused login, a bad certificate, an unknown table), and gives up when its deadline has
//! passed, saying what it waited for. Loops that wait between attempts of their own (the
//! monitor restarting its consumer, merges settling) take their waits from [`delays`].

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
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

/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(10);

/// The backoff: `base` first, doubled after each attempt, at most [`MAX_DELAY`], for as
/// many attempts as it takes. No jitter: each wait is one task's own, never a crowd's.
pub fn policy(base: Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(base)
        .with_factor(2.0)
        .with_max_delay(MAX_DELAY)
        .without_max_times()
}

/// The waits of [`policy`] one after another: `base`, `2 × base`, … up to [`MAX_DELAY`].
pub fn delays(base: Duration) -> impl Iterator<Item = Duration> {
    policy(base).build()
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
    let mut attempts = 0u32;
    let retry = op
        .retry(policy(Duration::from_millis(250)))
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
    fn delays_double_from_the_base_and_stop_growing_at_the_cap() {
        let secs = |s: &[u64]| {
            s.iter()
                .map(|s| Duration::from_secs(*s))
                .collect::<Vec<_>>()
        };
        let waits: Vec<Duration> = delays(Duration::from_secs(1)).take(7).collect();
        assert_eq!(waits, secs(&[1, 2, 4, 8, 10, 10, 10]));
        let ms = |m: &[u64]| {
            m.iter()
                .map(|m| Duration::from_millis(*m))
                .collect::<Vec<_>>()
        };
        let waits: Vec<Duration> = delays(Duration::from_millis(250)).take(8).collect();
        assert_eq!(
            waits,
            ms(&[250, 500, 1000, 2000, 4000, 8000, 10_000, 10_000])
        );
        // It does not run out.
        assert_eq!(delays(Duration::from_secs(1)).nth(1000), Some(MAX_DELAY));
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
