//! W3C Trace Context `traceparent`: a strict parser with explained errors, and its formatter.
//!
//! The hex conversion and id types are OpenTelemetry's ([`TraceId`], [`SpanId`], [`TraceFlags`]);
//! this module adds what OpenTelemetry's propagator keeps to itself: *why* a value was rejected.
//! Rules (W3C Trace Context, level 1 and 2):
//! - `version-traceid-parentid-flags`, lowercase hex only, fields of 2, 32, 16 and 2 digits;
//! - version `ff` is invalid; version `00` is exactly 55 characters; a later version may append
//!   fields after a `-`, which are ignored;
//! - an all-zero trace id or parent id is invalid.

use std::fmt;
use std::str::FromStr;

use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// A parsed, valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace the event belongs to.
    pub trace_id: TraceId,
    /// The span that produced the event (the parent of whatever handles it).
    pub parent_id: SpanId,
    /// Trace flags; bit 0 is `sampled`.
    pub flags: TraceFlags,
}

/// Why a `traceparent` value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceParentError {
    /// The value does not have the length its version requires.
    #[error("expected 55 characters for version 00, got {len}")]
    WrongLength {
        /// Length seen.
        len: usize,
    },
    /// The value is shorter than any version allows.
    #[error("too short: {len} characters, at least 55 needed")]
    TooShort {
        /// Length seen.
        len: usize,
    },
    /// A `-` separator is missing where the format requires one.
    #[error("missing `-` separator at position {position}")]
    MissingSeparator {
        /// Zero-based position where `-` was expected.
        position: usize,
    },
    /// The version is `ff`, which the standard forbids.
    #[error("version ff is forbidden")]
    ForbiddenVersion,
    /// A field holds upper-case hex digits; the standard allows lower case only.
    #[error("{field} has upper-case hex digits; only lower case is allowed")]
    UpperCase {
        /// The field name (`version`, `trace-id`, `parent-id`, `trace-flags`).
        field: &'static str,
    },
    /// A field holds a character that is not a hex digit.
    #[error("{field} is not hexadecimal")]
    NotHex {
        /// The field name.
        field: &'static str,
    },
    /// The trace id is all zeros.
    #[error("trace-id is all zeros")]
    ZeroTraceId,
    /// The parent id is all zeros.
    #[error("parent-id is all zeros")]
    ZeroParentId,
}

const VERSION_00_LEN: usize = 55;

fn check_hex(field: &'static str, s: &str) -> Result<(), TraceParentError> {
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(TraceParentError::NotHex { field });
    }
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(TraceParentError::UpperCase { field });
    }
    Ok(())
}

impl FromStr for TraceParent {
    type Err = TraceParentError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let len = value.len();
        if len < VERSION_00_LEN {
            return Err(TraceParentError::TooShort { len });
        }
        if !value.is_ascii() {
            return Err(TraceParentError::NotHex {
                field: "traceparent",
            });
        }
        for position in [2, 35, 52] {
            if value.as_bytes()[position] != b'-' {
                return Err(TraceParentError::MissingSeparator { position });
            }
        }
        let version = &value[0..2];
        check_hex("version", version)?;
        if version == "ff" {
            return Err(TraceParentError::ForbiddenVersion);
        }
        if version == "00" && len != VERSION_00_LEN {
            return Err(TraceParentError::WrongLength { len });
        }
        if len > VERSION_00_LEN && value.as_bytes()[VERSION_00_LEN] != b'-' {
            return Err(TraceParentError::MissingSeparator {
                position: VERSION_00_LEN,
            });
        }
        let (trace, parent, flags) = (&value[3..35], &value[36..52], &value[53..55]);
        check_hex("trace-id", trace)?;
        check_hex("parent-id", parent)?;
        check_hex("trace-flags", flags)?;
        let trace_id =
            TraceId::from_hex(trace).map_err(|_| TraceParentError::NotHex { field: "trace-id" })?;
        let parent_id = SpanId::from_hex(parent)
            .map_err(|_| TraceParentError::NotHex { field: "parent-id" })?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| TraceParentError::NotHex {
            field: "trace-flags",
        })?;
        if trace_id == TraceId::INVALID {
            return Err(TraceParentError::ZeroTraceId);
        }
        if parent_id == SpanId::INVALID {
            return Err(TraceParentError::ZeroParentId);
        }
        Ok(Self {
            trace_id,
            parent_id,
            // Only the sampled bit is defined for version 00; unknown bits are not propagated.
            flags: TraceFlags::new(flags) & TraceFlags::SAMPLED,
        })
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id,
            self.parent_id,
            self.flags.to_u8()
        )
    }
}

impl TraceParent {
    /// The OpenTelemetry remote span context this `traceparent` describes.
    pub fn to_span_context(&self, state: TraceState) -> SpanContext {
        SpanContext::new(self.trace_id, self.parent_id, self.flags, true, state)
    }

    /// The `traceparent` of a valid span context, or `None` for an invalid one.
    pub fn from_span_context(cx: &SpanContext) -> Option<Self> {
        cx.is_valid().then(|| Self {
            trace_id: cx.trace_id(),
            parent_id: cx.span_id(),
            flags: cx.trace_flags() & TraceFlags::SAMPLED,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn err(value: &str) -> TraceParentError {
        value.parse::<TraceParent>().unwrap_err()
    }

    #[test]
    fn valid_value_round_trips() {
        let tp: TraceParent = VALID.parse().unwrap();
        assert_eq!(tp.trace_id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
        assert!(tp.flags.is_sampled());
        assert_eq!(tp.to_string(), VALID);
    }

    #[test]
    fn unsampled_flag_is_kept() {
        let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
            .parse()
            .unwrap();
        assert!(!tp.flags.is_sampled());
    }

    #[test]
    fn forbidden_version_ff_is_rejected() {
        assert_eq!(
            err("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            TraceParentError::ForbiddenVersion
        );
    }

    #[test]
    fn non_hex_version_is_rejected() {
        assert_eq!(
            err("0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            TraceParentError::NotHex { field: "version" }
        );
    }

    #[test]
    fn version_00_with_trailing_data_is_rejected() {
        assert_eq!(
            err(&format!("{VALID}-extra")),
            TraceParentError::WrongLength { len: 61 }
        );
    }

    #[test]
    fn future_version_with_extra_fields_is_accepted() {
        let tp: TraceParent =
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-holds"
                .parse()
                .unwrap();
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
    }

    #[test]
    fn short_value_is_rejected() {
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"),
            TraceParentError::TooShort { len: 52 }
        );
        assert_eq!(err(""), TraceParentError::TooShort { len: 0 });
    }

    #[test]
    fn wrong_field_lengths_are_rejected_by_separator_position() {
        // trace id one digit short, parent id one digit long: same total length.
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01"),
            TraceParentError::MissingSeparator { position: 35 }
        );
    }

    #[test]
    fn upper_case_is_rejected() {
        assert_eq!(
            err("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            TraceParentError::UpperCase { field: "trace-id" }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"),
            TraceParentError::UpperCase { field: "parent-id" }
        );
    }

    #[test]
    fn all_zero_ids_are_rejected() {
        assert_eq!(
            err("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            TraceParentError::ZeroTraceId
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            TraceParentError::ZeroParentId
        );
    }

    #[test]
    fn non_ascii_is_rejected_without_panicking() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01";
        assert!(matches!(
            err(value),
            TraceParentError::NotHex { .. } | TraceParentError::TooShort { .. }
        ));
    }

    #[test]
    fn garbage_in_a_field_is_rejected() {
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e47zz-00f067aa0ba902b7-01"),
            TraceParentError::NotHex { field: "trace-id" }
        );
        assert_eq!(
            err("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"),
            TraceParentError::NotHex {
                field: "trace-flags"
            }
        );
    }
}
