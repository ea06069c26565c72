//! What the ledger reports to Prometheus (`--metrics-listen`), through the
//! `metrics` facade: nothing is recorded unless a program installs an
//! exporter. Labels are stable reasons and outcomes only, never an id, a
//! key or any part of an event.

use std::time::Duration;

use aidledger_ledger::Rejection;

use crate::sequencer::Outcome;

/// Counts one group commit's outcomes, its size and how long it took.
pub(crate) fn group_committed(
    outcomes: &[Result<Outcome, Rejection>],
    took: Duration,
    log_size: u64,
) {
    metrics::histogram!("aidledger_group_events").record(outcomes.len() as f64);
    metrics::histogram!("aidledger_commit_seconds").record(took.as_secs_f64());
    metrics::gauge!("aidledger_log_entries").set(log_size as f64);
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Appended { .. }) => {
                metrics::counter!("aidledger_appends_total", "outcome" => "appended").increment(1);
            }
            Ok(Outcome::Duplicate { .. }) => {
                metrics::counter!("aidledger_appends_total", "outcome" => "duplicate").increment(1);
            }
            Err(rejection) => {
                metrics::counter!("aidledger_refusals_total", "reason" => rejection.reason.as_str())
                    .increment(1);
            }
        }
    }
}

/// A checkpoint was signed: its size and when (its age is `time() -` this).
pub(crate) fn checkpoint_signed(size: u64, unix_seconds: f64) {
    metrics::gauge!("aidledger_checkpoint_size").set(size as f64);
    metrics::gauge!("aidledger_checkpoint_signed_timestamp_seconds").set(unix_seconds);
}

/// Open `Subscribe` streams, counted up while one lives.
#[derive(Debug)]
pub(crate) struct Subscriber;

impl Subscriber {
    pub(crate) fn new() -> Self {
        metrics::gauge!("aidledger_subscribers").increment(1.0);
        Subscriber
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        metrics::gauge!("aidledger_subscribers").decrement(1.0);
    }
}
