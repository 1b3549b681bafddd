//! The vocabulary of consumer-group positions: where one group stands against one event's record
//! ([`GroupPosition`]) and why an expected reaction to it is missing ([`Diagnosis`]).
//!
//! Times are microseconds since the Unix epoch (fields ending `_us`), written as RFC 3339 in JSON
//! (`consumed_at_us` → `consumed_at`).

use serde::Serialize;
use utoipa::ToSchema;

/// Where a consumer group stands against one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupState {
    /// The group's committed offset is past the record: it has read it.
    Consumed,
    /// The group has not read the record yet.
    Pending,
    /// The group has no members (or is `Empty`/`Dead`), whatever its offsets: nobody reads for it.
    Inactive,
}

impl GroupState {
    /// Its name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consumed => "consumed",
            Self::Pending => "pending",
            Self::Inactive => "inactive",
        }
    }
}

/// One consumer group's position against one event's record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupPosition {
    /// The consumer group.
    pub group: String,
    /// The service whose reactions this group produces, when known.
    #[schema(required)]
    pub service: Option<String>,
    /// Consumed, pending or inactive.
    pub state: GroupState,
    /// The record's topic.
    pub topic: String,
    /// The record's partition.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// The group's committed offset on that partition (the next offset it will read), when it
    /// committed one.
    #[schema(required)]
    pub committed_offset: Option<i64>,
    /// Pending only: records of the partition the group still has to read up to and including
    /// this one (`offset + 1 - committed_offset`).
    #[schema(required)]
    pub lag_records: Option<i64>,
    /// Pending only: seconds until the group reaches the record at its recent commit rate on the
    /// partition; `None` when it has not moved lately or its rate is not known yet.
    #[schema(required)]
    pub lag_seconds: Option<f64>,
    /// Consumed only: when the collector first saw the group's committed offset past the record
    /// (µs; RFC 3339 `consumed_at` in JSON); `None` when it was already past at the oldest
    /// position remembered.
    #[serde(
        rename = "consumed_at",
        serialize_with = "crate::clock::serialize_rfc3339_opt"
    )]
    #[schema(value_type = Option<String>, required)]
    pub consumed_at_us: Option<i64>,
}

/// What consumer-group positions say about a missing reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiagnosisKind {
    /// The groups read the event and nothing came of it: the service's handler is at fault.
    ConsumedNoReaction,
    /// A group has not reached the event yet: the reaction may still come.
    Lagging,
    /// A group that would read the event has no members.
    Inactive,
    /// No consumer group reads the event's topic.
    NoGroup,
    /// Not enough is known to say (no poll yet, or no group known to be the expected service's).
    Unknown,
}

impl DiagnosisKind {
    /// Its name in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ConsumedNoReaction => "consumed_no_reaction",
            Self::Lagging => "lagging",
            Self::Inactive => "inactive",
            Self::NoGroup => "no_group",
            Self::Unknown => "unknown",
        }
    }
}

/// Why an expected reaction to an event is missing, from consumer-group positions.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Diagnosis {
    /// What kind of cause.
    pub kind: DiagnosisKind,
    /// One sentence for a person, e.g. "bank's group `bank` consumed PaymentCreated
    /// (payments/2@1234) 40 s ago and produced nothing".
    pub text: String,
    /// The positions it is drawn from: the expected service's groups, or every group reading the
    /// topic when the service is not known or none of its groups is.
    pub groups: Vec<GroupPosition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnosis_serialises_with_the_field_and_kind_names_of_the_api() {
        let d = Diagnosis {
            kind: DiagnosisKind::ConsumedNoReaction,
            text: "t".into(),
            groups: vec![GroupPosition {
                group: "bank".into(),
                service: Some("bank".into()),
                state: GroupState::Consumed,
                topic: "payments".into(),
                partition: 2,
                offset: 1234,
                committed_offset: Some(1240),
                lag_records: None,
                lag_seconds: None,
                consumed_at_us: Some(1_796_142_055_966_000),
            }],
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({
                "kind": "consumed_no_reaction",
                "text": "t",
                "groups": [{
                    "group": "bank", "service": "bank", "state": "consumed",
                    "topic": "payments", "partition": 2, "offset": 1234,
                    "committed_offset": 1240, "lag_records": null, "lag_seconds": null,
                    "consumed_at": "2026-12-01T16:20:55.966000Z"
                }]
            })
        );
    }

    #[test]
    fn every_state_and_kind_is_named_in_snake_case_as_its_as_str() {
        for s in [
            GroupState::Consumed,
            GroupState::Pending,
            GroupState::Inactive,
        ] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for k in [
            DiagnosisKind::ConsumedNoReaction,
            DiagnosisKind::Lagging,
            DiagnosisKind::Inactive,
            DiagnosisKind::NoGroup,
            DiagnosisKind::Unknown,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }
}
