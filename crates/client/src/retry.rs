//! When to try a call again, and how long to wait first.
//!
//! Retrying is safe for every call the client makes: reads are idempotent,
//! and so is an append of the identical signed event (SPEC §6: the ledger
//! returns the original seq with `duplicate = true`).

use std::time::Duration;

use tonic::{Code, Status};

/// Exponential backoff with a cap, without jitter: the ledger has one writer
/// and its clients are a handful of agencies, not a fleet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 disables retrying.
    pub retries: u32,
    /// The wait before the first retry; it doubles for each next one.
    pub backoff_initial: Duration,
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            // 6.3 s of waiting in all: longer than a standby takes to take
            // over from a writer that died (5 s at most, SPEC §6), so a
            // failover costs a caller time, not an error.
            retries: 6,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 1_u32.checked_shl(retry).unwrap_or(u32::MAX);
        self.backoff_initial
            .checked_mul(factor)
            .map_or(self.backoff_max, |wait| wait.min(self.backoff_max))
    }
}

/// Whether a failed call may succeed if tried again unchanged: the server
/// was unreachable or overloaded (`UNAVAILABLE`, which tonic also reports for
/// connection failures) or too slow (`DEADLINE_EXCEEDED`), or the connection
/// broke under the call (a status made here from a transport error, such as
/// a broken pipe when the ledger died mid-request, which tonic reports as
/// `UNKNOWN`). Refusals are final: the same event is refused again.
pub(crate) fn is_transient(status: &Status) -> bool {
    let broke_here = std::error::Error::source(status).is_some()
        && matches!(
            status.code(),
            Code::Unknown | Code::Internal | Code::Cancelled
        );
    broke_here || matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (0..8)
            .map(|retry| policy.backoff(retry).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(policy.backoff(u32::MAX), policy.backoff_max);
        assert_eq!(policy.backoff(40), policy.backoff_max);
    }

    #[test]
    fn unavailability_deadlines_and_broken_connections_are_retried() {
        assert!(is_transient(&Status::unavailable("connection refused")));
        assert!(is_transient(&Status::deadline_exceeded("slow")));
        assert!(!is_transient(&Status::failed_precondition(
            "INSUFFICIENT_BALANCE: x"
        )));
        assert!(!is_transient(&Status::already_exists("EVENT_ID_EXISTS: x")));
        assert!(!is_transient(&Status::internal("disk")));
        // The same code made here from a broken connection is retried.
        let broken = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "stream closed because of a broken pipe",
        )));
        assert!(std::error::Error::source(&broken).is_some());
        assert!(is_transient(&broken), "{broken:?}");
    }
}
