//! The error vocabulary. Every layer reports failures as a [`WarrenError`]
//! whose [`ErrorKind`] decides the wire status; the message is for people.

use std::fmt;

/// What kind of failure this is; decides the HTTP status and wire code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or a value is out of range (400).
    InvalidArgument,
    /// No valid credentials (401).
    Unauthenticated,
    /// Valid credentials without the needed right (403).
    PermissionDenied,
    /// The object does not exist, or the caller may not know it does (404).
    NotFound,
    /// The object already exists (409).
    AlreadyExists,
    /// The object is in a state that forbids the operation (409).
    FailedPrecondition,
    /// The request body is larger than allowed (413).
    PayloadTooLarge,
    /// A host limit would be exceeded (429).
    ResourceExhausted,
    /// The team's quota would be exceeded (429); the message names the
    /// limit and the team's usage of it.
    QuotaExceeded,
    /// A budget of the team is spent (402); the message names the budget
    /// and its spend.
    BudgetExceeded,
    /// A dependency (runtime, agent, store) is not available right now (503).
    Unavailable,
    /// The operation did not finish in time (504).
    DeadlineExceeded,
    /// The host has too little disk left for the operation (507).
    InsufficientStorage,
    /// A bug or an unexpected host failure (500); details go to the log only.
    Internal,
}

impl ErrorKind {
    /// The stable snake_case code used on the wire.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::FailedPrecondition => "failed_precondition",
            Self::PayloadTooLarge => "payload_too_large",
            Self::ResourceExhausted => "resource_exhausted",
            Self::QuotaExceeded => "quota_exceeded",
            Self::BudgetExceeded => "budget_exceeded",
            Self::Unavailable => "unavailable",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::InsufficientStorage => "insufficient_storage",
            Self::Internal => "internal",
        }
    }
}

/// A failure with a kind and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WarrenError {
    pub kind: ErrorKind,
    pub message: String,
    /// For a refusal that should clear by itself (the host is busy or
    /// short of memory): seconds after which the same call may succeed.
    pub retry_after_s: Option<u32>,
}

impl fmt::Display for WarrenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl WarrenError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after_s: None,
        }
    }

    /// This error with a hint to retry after `seconds` (at least 1).
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after_s = Some(seconds.max(1));
        self
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// An error of `kind` whose message is `e` followed by every cause, for
    /// failures an operator needs in full (runtime, builds, start-up).
    pub fn with_chain(kind: ErrorKind, e: &dyn std::error::Error) -> Self {
        Self::new(kind, chain(e))
    }
}

/// Whether `e` says a filesystem is full (`ENOSPC`, or `EDQUOT` for a
/// quota): the operation needs disk the host does not have, a 507.
pub fn is_no_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// Whether an error text from outside the daemon (a helper's output, a
/// library's message) says a filesystem is full: the `ENOSPC` and
/// `EDQUOT` texts of libc and Go, and SQLite's `SQLITE_FULL`.
pub fn says_no_space(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "no space left on device",
        "disk quota exceeded",
        "database or disk is full",
    ]
    .iter()
    .any(|s| text.contains(s))
}

/// A 507 for an operation that failed because the data directory's disk
/// is full; `what` names what could not be written. The failure itself
/// names host paths: the caller logs it for the operator.
pub fn disk_full(what: &str) -> WarrenError {
    WarrenError::new(
        ErrorKind::InsufficientStorage,
        format!(
            "the host's disk is full: {what} could not be written; free space (kill sandboxes, delete snapshots) and retry"
        ),
    )
}

/// `e` and its causes, joined with ": ".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading the config failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn a_full_disk_is_recognised_by_kind_and_by_text() {
        assert!(is_no_space(&std::io::Error::from_raw_os_error(28)));
        assert!(is_no_space(&std::io::Error::from_raw_os_error(122)));
        assert!(!is_no_space(&std::io::Error::from_raw_os_error(5)));
        assert!(says_no_space(
            "checkpoint failed: write /x/pages.img: no space left on device"
        ));
        assert!(says_no_space("(code: 13) database or disk is full"));
        assert!(!says_no_space("permission denied"));
        let e = disk_full("the snapshot image");
        assert_eq!(e.kind, ErrorKind::InsufficientStorage);
        assert!(e.message.contains("disk is full"), "{}", e.message);
    }

    #[test]
    fn chain_names_every_cause_once() {
        let e = Outer(std::io::Error::other("disk on fire"));
        assert_eq!(chain(&e), "reading the config failed: disk on fire");
        let w = WarrenError::with_chain(ErrorKind::Unavailable, &e);
        assert_eq!(w.kind, ErrorKind::Unavailable);
        assert_eq!(w.message, "reading the config failed: disk on fire");
    }
}
