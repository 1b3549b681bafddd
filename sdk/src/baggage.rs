//! W3C Baggage: business keys such as `order.id=o-1001` ride in the `baggage` header so that every
//! downstream event of a flow carries them, even when its payload does not.
//!
//! The percent-encoding is the `percent-encoding` crate's; this module applies the W3C grammar
//! (`key = value *(; property)`, comma-separated, optional white space) and the limit of
//! [`MAX_BAGGAGE_BYTES`], reporting each member it cannot use instead of dropping it silently.
//! Member properties (`;…`) are read past and not propagated.

use std::collections::BTreeMap;

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::problem::HeaderProblem;

/// The W3C limit on the whole `baggage` header.
pub const MAX_BAGGAGE_BYTES: usize = 8192;
/// The number of members the W3C asks every platform to propagate at least.
pub const MAX_BAGGAGE_MEMBERS: usize = 64;

/// Bytes a baggage value must percent-encode: controls, space, `"`, `,`, `;`, `\` and `%`.
const VALUE_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');

/// Whether `name` is an RFC 7230 token, the form W3C Baggage requires of keys.
pub fn is_valid_key(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads a `baggage` header value into keys, reporting every member that could not be used.
pub fn parse(value: &str) -> (BTreeMap<String, String>, Vec<HeaderProblem>) {
    let mut keys = BTreeMap::new();
    let mut problems = Vec::new();
    if value.len() > MAX_BAGGAGE_BYTES {
        problems.push(HeaderProblem::BaggageTooLarge {
            bytes: value.len(),
            limit: MAX_BAGGAGE_BYTES,
        });
    }
    let mut used = 0;
    for member in value.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        used += member.len() + 1;
        if used > MAX_BAGGAGE_BYTES + 1 || keys.len() >= MAX_BAGGAGE_MEMBERS {
            // Past the limit: reported once above (or here for the member count), not used.
            if keys.len() >= MAX_BAGGAGE_MEMBERS && used <= MAX_BAGGAGE_BYTES + 1 {
                problems.push(HeaderProblem::InvalidBaggageMember {
                    member: member.to_owned(),
                    reason: format!("more than {MAX_BAGGAGE_MEMBERS} members"),
                });
            }
            continue;
        }
        match parse_member(member) {
            Ok((k, v)) => {
                keys.insert(k, v);
            }
            Err(reason) => problems.push(HeaderProblem::InvalidBaggageMember {
                member: member.to_owned(),
                reason,
            }),
        }
    }
    (keys, problems)
}

fn parse_member(member: &str) -> Result<(String, String), String> {
    let pair = member.split(';').next().unwrap_or_default();
    let (key, value) = pair
        .split_once('=')
        .ok_or_else(|| "no `=` between key and value".to_owned())?;
    let (key, value) = (key.trim(), value.trim());
    if !is_valid_key(key) {
        return Err(format!("key `{key}` is not a token"));
    }
    let value = percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| "value is not UTF-8 once percent-decoded".to_owned())?;
    Ok((key.to_owned(), value.into_owned()))
}

/// Why a set of keys cannot be written as a `baggage` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BaggageError {
    /// A key is not an RFC 7230 token (letters, digits and `!#$%&'*+-.^_\`|~`).
    #[error("business key name `{0}` is not a valid baggage key (RFC 7230 token)")]
    InvalidKey(String),
    /// The encoded header would exceed [`MAX_BAGGAGE_BYTES`].
    #[error("baggage would be {0} bytes, over the W3C limit of {MAX_BAGGAGE_BYTES}")]
    TooLarge(usize),
    /// More members than [`MAX_BAGGAGE_MEMBERS`].
    #[error("baggage would have {0} members, over the limit of {MAX_BAGGAGE_MEMBERS}")]
    TooManyMembers(usize),
}

/// Writes keys as a `baggage` header value, percent-encoding the values.
pub fn format(keys: &BTreeMap<String, String>) -> Result<String, BaggageError> {
    if keys.len() > MAX_BAGGAGE_MEMBERS {
        return Err(BaggageError::TooManyMembers(keys.len()));
    }
    let mut out = String::new();
    for (key, value) in keys {
        if !is_valid_key(key) {
            return Err(BaggageError::InvalidKey(key.clone()));
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(key);
        out.push('=');
        out.extend(utf8_percent_encode(value, VALUE_ENCODE));
    }
    if out.len() > MAX_BAGGAGE_BYTES {
        return Err(BaggageError::TooLarge(out.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_percent_encodes_reserved_characters() {
        let original = keys(&[("order.id", "o-1001"), ("note", "a, b; c=d %e \"q\" ü")]);
        let header = format(&original).unwrap();
        assert!(!header.contains(' '), "spaces must be encoded: {header}");
        let (back, problems) = parse(&header);
        assert_eq!(back, original);
        assert!(problems.is_empty());
    }

    #[test]
    fn white_space_and_properties_are_tolerated() {
        let (k, problems) = parse(" order.id = o-1 ; prop=1 ,member.id=m-7;x ");
        assert_eq!(k, keys(&[("order.id", "o-1"), ("member.id", "m-7")]));
        assert!(problems.is_empty());
    }

    #[test]
    fn bad_members_are_reported_and_good_ones_kept() {
        let (k, problems) = parse("order.id=o-1,novalue,bad key=x,v=%ff");
        assert_eq!(k, keys(&[("order.id", "o-1")]));
        let kinds: Vec<_> = problems.iter().map(HeaderProblem::kind).collect();
        assert_eq!(kinds, vec!["invalid_baggage_member"; 3]);
    }

    #[test]
    fn oversized_baggage_is_reported_and_truncated_to_the_limit() {
        let big = (0..1000)
            .map(|i| format!("k{i}=vvvvvvvvvv"))
            .collect::<Vec<_>>()
            .join(",");
        assert!(big.len() > MAX_BAGGAGE_BYTES);
        let (k, problems) = parse(&big);
        assert!(matches!(
            problems[0],
            HeaderProblem::BaggageTooLarge { limit: 8192, .. }
        ));
        assert_eq!(k.len(), MAX_BAGGAGE_MEMBERS);
    }

    #[test]
    fn formatting_refuses_what_the_standard_forbids() {
        assert_eq!(
            format(&keys(&[("order id", "x")])),
            Err(BaggageError::InvalidKey("order id".into()))
        );
        let huge = keys(&[("blob", &"x".repeat(9000))]);
        assert!(matches!(format(&huge), Err(BaggageError::TooLarge(_))));
    }

    #[test]
    fn our_header_reads_back_through_opentelemetry_baggage_propagator() {
        use opentelemetry::baggage::BaggageExt;
        use opentelemetry::propagation::TextMapPropagator;
        use std::collections::HashMap;
        let header = format(&keys(&[("order.id", "o 1,2"), ("member.id", "m-7")])).unwrap();
        let carrier = HashMap::from([("baggage".to_string(), header)]);
        let cx = opentelemetry_sdk::propagation::BaggagePropagator::new().extract(&carrier);
        assert_eq!(
            cx.baggage().get("order.id").map(|v| v.as_str()),
            Some("o 1,2")
        );
        assert_eq!(
            cx.baggage().get("member.id").map(|v| v.as_str()),
            Some("m-7")
        );
    }
}
