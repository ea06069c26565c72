//! The one place where refusals and operating errors become gRPC statuses.
//!
//! SPEC §6: a refusal carries its status code and a stable machine-readable
//! reason, both as a `google.rpc.ErrorInfo` detail (domain `aidledger.v1`)
//! and as the message prefix `REASON: detail`, so clients without rich-error
//! support can still match on it.

use std::collections::HashMap;

use aidledger_ledger::{Code as RuleCode, Rejection};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every aidledger refusal.
pub const ERROR_DOMAIN: &str = "aidledger.v1";

/// The gRPC code of a refusal.
pub fn grpc_code(code: RuleCode) -> Code {
    Code::from_i32(code.as_i32())
}

/// A refusal as a status: code, `REASON: detail` message, ErrorInfo.
pub fn rejection_status(rejection: &Rejection) -> Status {
    refusal(
        grpc_code(rejection.code()),
        rejection.reason.as_str(),
        &rejection.detail,
    )
}

/// A refusal that does not come from the rules (limits, lookups): same shape.
pub fn refusal(code: Code, reason: &str, detail: &str) -> Status {
    refusal_with(code, reason, detail, None)
}

/// [`refusal`] with one metadata entry in its `ErrorInfo`, for what a
/// client acts on (the writer's address of `NOT_LEADER`).
pub fn refusal_with(
    code: Code,
    reason: &str,
    detail: &str,
    metadata: Option<(String, String)>,
) -> Status {
    Status::with_error_details(
        code,
        format!("{reason}: {detail}"),
        ErrorDetails::with_error_info(
            reason,
            ERROR_DOMAIN,
            metadata.into_iter().collect::<HashMap<_, _>>(),
        ),
    )
}
