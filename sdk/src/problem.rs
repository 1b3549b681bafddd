//! What can be wrong with a record's headers, as typed, explained values.
//!
//! Readers never panic and never invent a parent: whatever they could not use is reported here, and
//! the corresponding field of the [`EventContext`](crate::EventContext) stays empty.

use crate::traceparent::TraceParentError;

/// One thing found wrong while reading a record's headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProblem {
    /// The header's value is not valid UTF-8, so it cannot be a text attribute.
    #[error("header `{header}` is not valid UTF-8")]
    NotUtf8 {
        /// The header name as it appeared on the record.
        header: String,
    },
    /// The header is present with a null value.
    #[error("header `{header}` has no value")]
    NullValue {
        /// The header name as it appeared on the record.
        header: String,
    },
    /// The header is present but empty (or only white space).
    #[error("header `{header}` is empty")]
    Empty {
        /// The header name as it appeared on the record.
        header: String,
    },
    /// A single-valued header appears more than once.
    #[error("header `{header}` appears {count} times{}", if *.conflicting { " with different values; none is used" } else { " with the same value" })]
    Duplicated {
        /// The header name.
        header: String,
        /// How many times it appears.
        count: usize,
        /// Whether the values differ (then the header is treated as absent).
        conflicting: bool,
    },
    /// `traceparent` is present but not a valid W3C trace context.
    #[error("invalid traceparent `{value}`: {reason}")]
    InvalidTraceParent {
        /// The offending value (lossily decoded).
        value: String,
        /// Why it was rejected.
        reason: TraceParentError,
    },
    /// `tracestate` is present but not a valid W3C list; it is dropped.
    #[error("invalid tracestate `{value}`")]
    InvalidTraceState {
        /// The offending value.
        value: String,
    },
    /// `tracestate` came without a valid `traceparent` and so cannot be used.
    #[error("tracestate without a valid traceparent is ignored")]
    OrphanTraceState,
    /// `baggage` is longer than the W3C limit of 8192 bytes; only the members that fit are used.
    #[error("baggage is {bytes} bytes, over the W3C limit of {limit}; members past the limit are dropped")]
    BaggageTooLarge {
        /// Size of the header value in bytes.
        bytes: usize,
        /// The limit that applies.
        limit: usize,
    },
    /// A baggage list member could not be parsed and is skipped.
    #[error("baggage member `{member}` is invalid: {reason}")]
    InvalidBaggageMember {
        /// The offending member.
        member: String,
        /// Why it was rejected.
        reason: String,
    },
    /// `ce_specversion` names a version other than `1.0`.
    #[error("unsupported CloudEvents specversion `{value}`")]
    UnsupportedSpecVersion {
        /// The version seen.
        value: String,
    },
    /// `ce_time` is not an RFC 3339 timestamp.
    #[error("header `{header}` is not an RFC 3339 time: `{value}`")]
    InvalidTime {
        /// The header name.
        header: String,
        /// The offending value.
        value: String,
    },
    /// An event names itself as its own cause.
    #[error("event `{id}` names itself as its cause")]
    SelfCausation {
        /// The event id.
        id: String,
    },
}

impl HeaderProblem {
    /// A short, stable, machine-friendly name of the problem kind, for metrics and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotUtf8 { .. } => "not_utf8",
            Self::NullValue { .. } => "null_value",
            Self::Empty { .. } => "empty",
            Self::Duplicated { .. } => "duplicated_header",
            Self::InvalidTraceParent { .. } => "invalid_traceparent",
            Self::InvalidTraceState { .. } => "invalid_tracestate",
            Self::OrphanTraceState => "orphan_tracestate",
            Self::BaggageTooLarge { .. } => "baggage_too_large",
            Self::InvalidBaggageMember { .. } => "invalid_baggage_member",
            Self::UnsupportedSpecVersion { .. } => "unsupported_specversion",
            Self::InvalidTime { .. } => "invalid_time",
            Self::SelfCausation { .. } => "self_causation",
        }
    }
}
