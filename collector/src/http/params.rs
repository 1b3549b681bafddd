//! The query parameters of the API's operations, as the OpenAPI document declares them, and
//! what they turn into for [`crate::query`].

use serde::Deserialize;
use utoipa::IntoParams;

use crate::query::{decode_cursor, parse_time, QueryError};
use crate::store::SearchFilter;

/// Lineage parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageParams {
    /// `up` (causes), `down` (reactions) or `both` (default).
    pub direction: Option<String>,
    /// Hops each way (default 10, at most 100).
    pub depth: Option<u32>,
}

/// `/keys` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyNamesParams {
    /// Only the names under which this value is a key of some event.
    pub value: Option<String>,
}

/// Search parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Events at or after (RFC 3339 or epoch ms).
    pub from: Option<String>,
    /// Events before (RFC 3339 or epoch ms).
    pub to: Option<String>,
    /// Event type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub event_type: Option<String>,
    /// Producing service.
    pub source: Option<String>,
    /// Topic.
    pub topic: Option<String>,
    /// Business key: `name=value`, or a value under any name.
    pub key: Option<String>,
    /// Problem kind, e.g. `invalid_traceparent` or `duplicate_publish`; `any` for every kind.
    pub problem: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl SearchParams {
    /// The store filter these parameters ask for.
    pub fn to_filter(&self) -> Result<SearchFilter, QueryError> {
        let key = self.key.as_deref().map(|k| match k.split_once('=') {
            Some((name, value)) => (Some(name.to_owned()), value.to_owned()),
            None => (None, k.to_owned()),
        });
        Ok(SearchFilter {
            from_us: self
                .from
                .as_deref()
                .map(|v| parse_time("from", v))
                .transpose()?,
            to_us: self
                .to
                .as_deref()
                .map(|v| parse_time("to", v))
                .transpose()?,
            event_type: self.event_type.clone(),
            source: self.source.clone(),
            topic: self.topic.clone(),
            key,
            problem: self.problem.clone(),
            before: self.cursor.as_deref().map(decode_cursor).transpose()?,
            limit: self.limit.unwrap_or(50),
        })
    }
}

/// Topology parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopologyParams {
    /// Start (RFC 3339 or epoch ms); default: 24 hours before `to`.
    pub from: Option<String>,
    /// End (RFC 3339 or epoch ms); default: now.
    pub to: Option<String>,
}
