//! Fetching at rest: a caught-up, settled consumer pauses its partitions instead of
//! polling the broker many times a second, and resumes when new messages come, seen in
//! its own look at the watermarks or in the lag samples its caller already takes.

use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use tokio::sync::watch;

use crate::kafka::sampler::LagSample;

/// How long a caught-up, settled consumer keeps fetching before it rests.
pub(super) const REST_AFTER: Duration = Duration::from_secs(3);

/// How often a resting consumer wakes: to look at the watermarks (about once a second)
/// and to see a pause or a new assignment.
pub(super) const RESTING_TICK: Duration = Duration::from_secs(1);

/// Fetching at rest: while every partition held is read to its end and landed, the
/// partitions are paused; the next look that finds one behind resumes them (within the
/// look's second).
#[derive(Default)]
pub(super) struct Rest {
    quiet_since: Option<Instant>,
    /// The partitions are paused, since then.
    pub(super) resting: bool,
    since: Option<Instant>,
}

impl Rest {
    pub(super) fn follow(&mut self, consumer: &crate::kafka::GroupConsumer, quiet: bool) {
        if !quiet {
            self.quiet_since = None;
            if self.resting {
                self.set(consumer, false);
            }
            return;
        }
        let since = *self.quiet_since.get_or_insert_with(Instant::now);
        if !self.resting && since.elapsed() >= REST_AFTER {
            self.set(consumer, true);
        }
    }

    fn set(&mut self, consumer: &crate::kafka::GroupConsumer, rest: bool) {
        let Ok(assignment) = consumer.assignment() else {
            return;
        };
        let done = if rest {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        };
        match done {
            Ok(()) => {
                tracing::debug!(
                    "{} fetching",
                    if rest {
                        "caught up: resting"
                    } else {
                        "new messages: resuming"
                    }
                );
                self.resting = rest;
                self.since = rest.then(Instant::now);
            }
            Err(e) => tracing::warn!(
                "could not {} fetching: {e}",
                if rest { "rest" } else { "resume" }
            ),
        }
    }
}

/// What the lag samples say while resting.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum News {
    /// No partition has messages beyond its committed offset.
    Nothing,
    /// A partition this consumer holds has new messages.
    Held,
    /// Only partitions held elsewhere (or by nobody) have.
    Elsewhere,
}

/// A sample older than this is not taken as news either way.
const FRESH: Duration = Duration::from_secs(3);

impl Rest {
    /// What the latest sample taken since resting began says; None without one (the
    /// consumer then looks itself).
    pub(super) fn news(
        &self,
        lag: Option<&watch::Receiver<Option<LagSample>>>,
        held: &[i32],
    ) -> Option<News> {
        let since = self.since?;
        let latest = lag?.borrow();
        let sample = latest.as_ref()?;
        if sample.at < since || sample.at.elapsed() > FRESH {
            return None;
        }
        let rows = sample.rows.as_ref().ok()?;
        let mut news = News::Nothing;
        for row in rows.iter().filter(|r| r.lag.lag.is_none_or(|n| n > 0)) {
            if held.contains(&row.lag.partition) {
                return Some(News::Held);
            }
            news = News::Elsewhere;
        }
        Some(news)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::lag::PartitionLag;
    use crate::kafka::sampler::{Holder, LagRow};

    fn sample(at: Instant, lags: &[(i32, i64)]) -> Option<LagSample> {
        let rows = lags
            .iter()
            .map(|&(partition, lag)| LagRow {
                lag: PartitionLag {
                    partition,
                    committed: Some(100),
                    low: 0,
                    high: 100 + lag,
                    lag: Some(lag),
                },
                oldest_age: None,
                holder: Holder::This,
                replicas: None,
            })
            .collect();
        Some(LagSample {
            at,
            rows: Ok(rows),
            members: Some(1),
        })
    }

    #[test]
    fn news_comes_only_from_samples_taken_while_resting() {
        let began = Instant::now() - Duration::from_millis(1500);
        let rest = Rest {
            quiet_since: None,
            resting: true,
            since: Some(began),
        };
        let held = [0, 1];
        let (tx, rx) = watch::channel(None);
        assert_eq!(rest.news(Some(&rx), &held), None, "no sample yet");
        assert_eq!(rest.news(None, &held), None, "no sampler");
        tx.send_replace(sample(began - Duration::from_millis(10), &[(0, 0)]));
        assert_eq!(rest.news(Some(&rx), &held), None, "taken before resting");
        let now = Instant::now();
        tx.send_replace(sample(now, &[(0, 0), (1, 0), (2, 0)]));
        assert_eq!(rest.news(Some(&rx), &held), Some(News::Nothing));
        tx.send_replace(sample(now, &[(0, 0), (1, 0), (2, 4)]));
        assert_eq!(rest.news(Some(&rx), &held), Some(News::Elsewhere));
        tx.send_replace(sample(now, &[(0, 0), (1, 3), (2, 4)]));
        assert_eq!(rest.news(Some(&rx), &held), Some(News::Held));
        tx.send_replace(Some(LagSample {
            at: now,
            rows: Err("broker down".into()),
            members: None,
        }));
        assert_eq!(rest.news(Some(&rx), &held), None, "a failed sample");
        let awake = Rest::default();
        tx.send_replace(sample(now, &[(0, 0)]));
        assert_eq!(awake.news(Some(&rx), &held), None, "not resting");
    }
}
