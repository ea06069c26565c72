//! What can go wrong talking to the ledger, shaped by what the caller does
//! next: fix the configuration, retry later, fix the event ([`Rejected`]), or
//! stop trusting the ledger ([`ClientError::Verification`]).

use std::fmt;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

/// The `google.rpc.ErrorInfo` domain the ledger puts its stable reasons in.
pub const ERROR_DOMAIN: &str = "aidledger.v1";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The options are unusable: a malformed endpoint, vkey or origin, TLS
    /// files that do not load, TLS options for an `http://` endpoint.
    #[error("configuration: {0}")]
    Config(String),
    /// The ledger could not be reached, or the connection failed, and retries
    /// did not help. Whether an append was applied is unknown: resubmitting the
    /// identical signed event is safe (SPEC §6 idempotency).
    #[error("transport: {0}")]
    Transport(String),
    /// The ledger refused the request: a format or rule refusal (SPEC §6).
    /// Resubmitting the same event will be refused again.
    #[error(transparent)]
    Rejected(#[from] Rejected),
    /// What was asked for does not exist (an entry, or the anchor entry of a
    /// subscription).
    #[error("not found: {what}")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The server failed in a way that is neither a refusal nor a transport
    /// failure (`INTERNAL`, `UNIMPLEMENTED`, a deadline after every retry).
    #[error("server error {}: {message}", code_name(*.code))]
    Server {
        /// The gRPC status code.
        code: Code,
        /// The status message.
        message: String,
    },
    /// An answer of the ledger does not check out: a leaf hash, the hash
    /// chain, a signature, a checkpoint or a proof is wrong, or a response is
    /// malformed. The ledger, or the path to it, is misbehaving.
    #[error("verification failed: {what}")]
    Verification {
        /// What did not verify, naming the seq or field.
        what: String,
    },
}

impl ClientError {
    pub(crate) fn verification(what: impl Into<String>) -> Self {
        ClientError::Verification { what: what.into() }
    }

    /// Maps a status that is not a success to the variant the caller acts on.
    pub(crate) fn from_status(status: Status) -> Self {
        // A status with a source was made here, from a local error (TLS,
        // connection), not sent by the server.
        let local = std::error::Error::source(&status).is_some();
        match status.code() {
            Code::Unavailable => ClientError::Transport(status_text(&status)),
            code if is_refusal(code) && !local => {
                ClientError::Rejected(Rejected::from_status(&status))
            }
            _ if local => ClientError::Transport(status_text(&status)),
            code => ClientError::Server {
                code,
                message: status_text(&status),
            },
        }
    }
}

/// The codes SPEC §6 uses for refusals, plus the lookup failures a request
/// about a missing entry or size gets.
fn is_refusal(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::NotFound
            | Code::OutOfRange
    )
}

/// The status message followed by its chain of sources, so a transport
/// failure says "connection refused" rather than just "transport error".
fn status_text(status: &Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        let part = error.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = error.source();
    }
    if text.is_empty() {
        text = status.code().description().to_owned();
    }
    text
}

/// A refusal by the ledger (SPEC §6): the status code, the stable
/// machine-readable reason (such as `INSUFFICIENT_BALANCE`; empty when the
/// server gave none) and the human-readable detail.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Rejected {
    /// The gRPC status code.
    pub code: Code,
    /// The stable reason, e.g. `INSUFFICIENT_BALANCE`; empty if the server
    /// sent none.
    pub reason: String,
    /// The detail for a person, without the `REASON: ` prefix.
    pub message: String,
}

impl Rejected {
    /// Reads a refusal from a status. The reason comes from a
    /// `google.rpc.ErrorInfo` detail of domain [`ERROR_DOMAIN`] when there is
    /// one, otherwise from a `REASON: ` prefix of the message.
    pub fn from_status(status: &Status) -> Self {
        let reason = status
            .get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN && is_reason(&info.reason))
            .map(|info| info.reason);
        Self::from_parts(status.code(), reason, status.message())
    }

    /// A refusal from one `AppendResult` of a batch: its code number, its
    /// reason (may be empty) and its message.
    pub fn from_result(code: i32, reason: &str, message: &str) -> Self {
        let reason = (!reason.is_empty()).then(|| reason.to_owned());
        Self::from_parts(Code::from_i32(code), reason, message)
    }

    fn from_parts(code: Code, reason: Option<String>, message: &str) -> Self {
        let (prefix, detail) = split_reason_prefix(message);
        let reason = match (reason, prefix) {
            (Some(reason), _) => reason,
            (None, Some(prefix)) => prefix.to_owned(),
            (None, None) => String::new(),
        };
        // Strip the prefix only when it is the reason, so no text is lost.
        let message = match prefix {
            Some(prefix) if prefix == reason => detail,
            _ => message,
        };
        Rejected {
            code,
            reason,
            message: message.to_owned(),
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(code_name(self.code))?;
        if !self.reason.is_empty() {
            write!(f, " {}", self.reason)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `"INSUFFICIENT_BALANCE: the balance ..."` → (`Some("INSUFFICIENT_BALANCE")`,
/// `"the balance ..."`).
fn split_reason_prefix(message: &str) -> (Option<&str>, &str) {
    match message.split_once(": ") {
        Some((prefix, detail)) if is_reason(prefix) => (Some(prefix), detail),
        _ => (None, message),
    }
}

/// A stable reason: SCREAMING_SNAKE_CASE, starting with a letter, at most 63
/// characters (the `google.rpc.ErrorInfo` rule).
fn is_reason(text: &str) -> bool {
    const REASON_LEN_MAX: usize = 63;
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b'A'..=b'Z'))
        && text.len() <= REASON_LEN_MAX
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The canonical name of a gRPC status code, as in the gRPC specification
/// (`FAILED_PRECONDITION`); `tonic::Code`'s `Display` gives a sentence.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic_types::{ErrorDetails, StatusExt as _};

    use super::*;

    #[test]
    fn reason_from_error_info_detail() {
        let status = Status::with_error_details(
            Code::FailedPrecondition,
            "the balance of agency-1 in VND is 5, not 10",
            ErrorDetails::with_error_info("INSUFFICIENT_BALANCE", ERROR_DOMAIN, HashMap::new()),
        );
        let rejected = Rejected::from_status(&status);
        assert_eq!(rejected.code, Code::FailedPrecondition);
        assert_eq!(rejected.reason, "INSUFFICIENT_BALANCE");
        assert_eq!(
            rejected.message,
            "the balance of agency-1 in VND is 5, not 10"
        );
    }

    #[test]
    fn reason_from_message_prefix() {
        let status = Status::new(
            Code::FailedPrecondition,
            "INSUFFICIENT_BALANCE: the balance is 5, not 10",
        );
        let rejected = Rejected::from_status(&status);
        assert_eq!(rejected.reason, "INSUFFICIENT_BALANCE");
        assert_eq!(rejected.message, "the balance is 5, not 10");
        assert_eq!(
            rejected.to_string(),
            "FAILED_PRECONDITION INSUFFICIENT_BALANCE: the balance is 5, not 10"
        );
    }

    #[test]
    fn both_detail_and_prefix_strip_the_prefix_once() {
        let status = Status::with_error_details(
            Code::AlreadyExists,
            "EVENT_ID_EXISTS: event 1f0c... is at seq 4",
            ErrorDetails::with_error_info("EVENT_ID_EXISTS", ERROR_DOMAIN, HashMap::new()),
        );
        let rejected = Rejected::from_status(&status);
        assert_eq!(rejected.reason, "EVENT_ID_EXISTS");
        assert_eq!(rejected.message, "event 1f0c... is at seq 4");
    }

    #[test]
    fn error_info_of_another_domain_is_ignored() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "bad",
            ErrorDetails::with_error_info("SOMETHING", "example.com", HashMap::new()),
        );
        let rejected = Rejected::from_status(&status);
        assert_eq!(rejected.reason, "");
        assert_eq!(rejected.to_string(), "INVALID_ARGUMENT: bad");
    }

    #[test]
    fn a_message_with_a_colon_but_no_reason_keeps_its_text() {
        let rejected = Rejected::from_result(3, "", "receipt.quantity: is 0");
        assert_eq!(rejected.code, Code::InvalidArgument);
        assert_eq!(rejected.reason, "");
        assert_eq!(rejected.message, "receipt.quantity: is 0");
    }

    #[test]
    fn batch_result_with_reason_field() {
        let rejected = Rejected::from_result(9, "UNKNOWN_ASSET", "UNKNOWN_ASSET: asset RICE");
        assert_eq!(rejected.code, Code::FailedPrecondition);
        assert_eq!(rejected.reason, "UNKNOWN_ASSET");
        assert_eq!(rejected.message, "asset RICE");
    }

    #[test]
    fn statuses_map_to_the_variant_the_caller_acts_on() {
        let refused =
            ClientError::from_status(Status::new(Code::PermissionDenied, "KEY_REVOKED: k"));
        assert!(matches!(refused, ClientError::Rejected(ref r) if r.reason == "KEY_REVOKED"));
        let down = ClientError::from_status(Status::new(Code::Unavailable, "connection refused"));
        assert!(matches!(down, ClientError::Transport(ref m) if m == "connection refused"));
        let local = ClientError::from_status(Status::from_error(Box::new(std::io::Error::other(
            "received fatal alert: CertificateRequired",
        ))));
        assert!(
            matches!(local, ClientError::Transport(ref m) if m.contains("CertificateRequired")),
            "{local:?}"
        );
        let broken = ClientError::from_status(Status::new(Code::Internal, "disk"));
        assert!(matches!(
            broken,
            ClientError::Server {
                code: Code::Internal,
                ..
            }
        ));
    }

    #[test]
    fn reasons_are_screaming_snake_case() {
        assert!(is_reason("INSUFFICIENT_BALANCE"));
        assert!(is_reason("E2"));
        assert!(!is_reason("receipt.quantity"));
        assert!(!is_reason("_X"));
        assert!(!is_reason(""));
        assert!(!is_reason(&"A".repeat(64)));
    }
}
