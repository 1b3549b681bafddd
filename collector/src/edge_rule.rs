//! How a cause → reaction edge was found: the rule every graph names on each edge, shared by the
//! walks ([`crate::lineage`], [`crate::flow`]) and the rules through spans ([`crate::handling`]).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How an edge was found (`rule` in the API; docs/lineage.md).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Declared: the reaction's `ce_causationid` (or an alias) names the cause.
    Causation,
    /// The reaction carries the same `traceparent` span as the earlier cause.
    SameSpan,
    /// Produced under the consumer span that names the cause's message position or id.
    SpanMessage,
    /// Produced under a consumer span linked to the cause's producer span.
    SpanLink,
    /// Produced under a consumer span whose parent is the cause's producer span.
    SpanParent,
}

impl Rule {
    /// Whether the edge was inferred rather than declared.
    pub fn inferred(self) -> bool {
        self != Rule::Causation
    }
}
