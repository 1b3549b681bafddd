//! The flow health answers: which flows are stuck, where and since when (`/api/v1/flows`), how
//! many per status and where they stopped (`/api/v1/flows/summary`), and the learned
//! choreography (`/api/v1/model`). They read the collector's tracker ([`HealthHandle`]): flows
//! with an event in the last hour (backfilled from the store at start), and the model learned
//! from them.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::model::{rfc3339, ExceptionView, FailureView, FlowHealthBrief, KeyValue, MissingView};
use super::{Limits, QueryError};
use crate::groups::GroupsHandle;
use crate::handling::Handling;
use crate::health::model::StepView;
use crate::health::status::{Failure, FlowFacts, MissingReaction};
use crate::health::tracker::{FlowSummary, StoppedGroup, Tracker};
use crate::health::{FlowStatus, HealthHandle, Reaction, Step};
use crate::store::{DeadLetterRow, Store, SummaryRow};

/// How many flows have each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StatusCounts {
    /// Nothing expected is missing.
    pub complete: usize,
    /// An expected reaction is missing, not yet due.
    pub in_progress: usize,
    /// An expected reaction is overdue.
    pub stalled: usize,
    /// An event of the flow failed.
    pub failed: usize,
}

/// The event a flow started with.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowRoot {
    /// Event id.
    pub id: String,
    /// Its type.
    #[schema(required)]
    pub event_type: Option<String>,
    /// Its producing service.
    #[schema(required)]
    pub service: Option<String>,
    /// When it happened (RFC 3339).
    pub time: String,
}

/// One flow and its health.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowHealthView {
    /// The flow: its correlation id, or its only event's id.
    pub flow: String,
    /// Its status.
    pub status: FlowStatus,
    /// The event it started with.
    pub root: FlowRoot,
    /// Its last event's time (RFC 3339).
    pub last_activity: String,
    /// How many events it has.
    pub events: usize,
    /// The business keys its events carry (at most 20).
    pub keys: Vec<KeyValue>,
    /// What it is missing, by deadline (only the most specific reaction of each).
    pub missing: Vec<MissingView>,
    /// Its events that failed.
    pub failures: Vec<FailureView>,
    /// When it turns stalled if nothing arrives (RFC 3339; `null` when nothing is pending).
    #[schema(required)]
    pub next_deadline: Option<String>,
    /// Steps where it ends that flow health has not learned yet (see `FlowHealthBrief`).
    pub learning: Vec<Step>,
}

impl FlowHealthView {
    /// Its status in words (`in progress`, not the API's `in_progress`).
    pub fn status_name(&self) -> &'static str {
        status_name(self.status)
    }
}

/// A status in words (`in progress`, not the API's `in_progress`).
pub fn status_name(status: FlowStatus) -> &'static str {
    match status {
        FlowStatus::Complete => "complete",
        FlowStatus::InProgress => "in progress",
        FlowStatus::Stalled => "stalled",
        FlowStatus::Failed => "failed",
    }
}

/// A page of tracked flows, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowsPage {
    /// The flows.
    pub flows: Vec<FlowHealthView>,
    /// The page size used (the request's, cut to the largest page).
    pub limit: usize,
    /// How many tracked flows have each status.
    pub counts: StatusCounts,
}

/// Stalled or failed flows that stopped at the same place.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StoppedGroupView {
    /// `stalled` or `failed`.
    pub status: FlowStatus,
    /// The step after which a reaction is missing (stalled), or that failed (failed).
    #[schema(required)]
    pub after: Option<Step>,
    /// The reaction waited for (stalled).
    #[schema(required)]
    pub waiting_for: Option<Reaction>,
    /// How many flows.
    pub flows: usize,
    /// The oldest of them, first (at most 10).
    pub oldest: Vec<String>,
}

/// How many flows are in each state, and where the stuck ones stopped.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FlowsSummary {
    /// Tracked flows per status.
    pub counts: StatusCounts,
    /// Stalled and failed flows grouped by where they stopped, largest group first.
    pub stopped: Vec<StoppedGroupView>,
    /// Batches of durable events flow health fell behind on since the collector started (its
    /// events count again after a restart).
    pub lagged_batches: u64,
}

/// The learned choreography.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelAnswer {
    /// Settled occurrences of a step before anything is expected after it.
    pub min_samples: u64,
    /// Share of a step's occurrences a reaction must follow to be expected.
    pub min_support: f64,
    /// Every step seen or declared, with what it is expected to get and every reaction seen.
    pub steps: Vec<StepView>,
}

/// Flows oldest to shown, at most this many per group.
const OLDEST_PER_GROUP: usize = 10;

fn counts(tracker: &Tracker) -> StatusCounts {
    let mut out = StatusCounts::default();
    for (status, n) in tracker.counts() {
        match status {
            FlowStatus::Complete => out.complete = n,
            FlowStatus::InProgress => out.in_progress = n,
            FlowStatus::Stalled => out.stalled = n,
            FlowStatus::Failed => out.failed = n,
        }
    }
    out
}

fn view(flow: FlowSummary, dead_letters: &DeadLetters) -> FlowHealthView {
    FlowHealthView {
        root: FlowRoot {
            id: flow.root,
            event_type: flow.root_type,
            service: flow.root_service,
            time: rfc3339(flow.started_us),
        },
        flow: flow.flow,
        status: flow.health.status,
        last_activity: rfc3339(flow.last_event_us),
        events: flow.events,
        keys: flow
            .keys
            .into_iter()
            .map(|(name, value)| KeyValue { name, value })
            .collect(),
        missing: missing_views(flow.health.missing),
        failures: failure_views(flow.health.failures, dead_letters),
        next_deadline: flow.health.next_deadline_us.map(rfc3339),
        learning: flow.health.learning,
    }
}

/// Dead letters by the id of the event they are copies of.
pub type DeadLetters = HashMap<String, Vec<DeadLetterRow>>;

/// The latest dead letter of event `id`, if it has any.
pub fn latest<'a>(dead_letters: &'a DeadLetters, id: &str) -> Option<&'a DeadLetterRow> {
    dead_letters.get(id).and_then(|rows| rows.last())
}

/// The dead letters of the events `ids`, by event.
pub async fn dead_letters_of(store: &Store, ids: &[String]) -> Result<DeadLetters, QueryError> {
    let mut out = DeadLetters::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for row in store.dead_letters_of(ids).await? {
        out.entry(row.original_id.clone()).or_default().push(row);
    }
    Ok(out)
}

fn missing_views(missing: Vec<MissingReaction>) -> Vec<MissingView> {
    missing
        .into_iter()
        .map(|m| MissingView {
            after_event: m.after_event,
            after: m.after,
            expected: m.expected,
            support: m.support,
            samples: m.samples,
            origin: m.origin,
            deadline: rfc3339(m.deadline_us),
            overdue_ms: m.overdue_ms,
            diagnosis: None,
        })
        .collect()
}

/// Where the events of an answer sit, by id: what a diagnosis needs of the event a reaction is
/// missing after.
pub type EventsById<'a> = HashMap<&'a str, &'a SummaryRow>;

/// The failed handlings of an answer's events, by event.
pub type HandlerFailures = HashMap<String, FailureView>;

/// The failure of an event whose handling failed, from its handlings (oldest first; see
/// [`crate::handling::failed_handling`]).
pub fn handler_failure(event: &str, handlings: &[Handling]) -> Option<FailureView> {
    let failed = crate::handling::failed_handling(handlings)?;
    Some(FailureView {
        event: event.to_owned(),
        reason: failed.reason(),
        service: failed.service().map(str::to_owned),
        exception: failed.exception().map(ExceptionView::from),
        dead_letter_topic: None,
        group: failed.consumer.consumer_group.clone(),
    })
}

/// The handler failures of `handlings` (by event), each event's as [`handler_failure`] says.
pub fn handler_failures(handlings: &HashMap<String, Vec<Handling>>) -> HandlerFailures {
    handlings
        .iter()
        .filter_map(|(event, list)| Some((event.clone(), handler_failure(event, list)?)))
        .collect()
}

/// Fills each missing reaction's diagnosis from the consumer groups' positions against the event
/// it follows (left `null` while the groups were never polled, or when that event is not in
/// `events`).
pub fn diagnose(
    groups: &GroupsHandle,
    missing: &mut [MissingView],
    events: &EventsById<'_>,
    now_us: i64,
) {
    let book = groups.book();
    if book.polled_at_us().is_none() {
        return;
    }
    for m in missing {
        let Some(e) = events.get(m.after_event.as_str()) else {
            continue;
        };
        m.diagnosis = Some(book.diagnose(
            &e.topic,
            e.kafka_partition,
            e.kafka_offset,
            &m.after.event_type,
            m.expected.service(),
            now_us,
        ));
    }
}

/// The collector's live state an answer judges flows by: flow health, the consumer groups, and
/// the dead letters of the answer's events.
#[derive(Debug, Clone, Copy)]
pub struct Judge<'a> {
    /// Flow health.
    pub health: &'a HealthHandle,
    /// Consumer-group positions.
    pub groups: &'a GroupsHandle,
    /// The dead letters of the answer's events.
    pub dead_letters: &'a DeadLetters,
    /// The failed handlings of the answer's events (from their spans).
    pub handler_failures: &'a HandlerFailures,
}

/// Each failure with where it was dead-lettered and by which group (its latest dead letter).
fn failure_views(failures: Vec<Failure>, dead_letters: &DeadLetters) -> Vec<FailureView> {
    failures
        .into_iter()
        .map(|Failure { event, reason }| {
            let latest = latest(dead_letters, &event);
            FailureView {
                dead_letter_topic: latest.map(|d| d.topic.clone()),
                group: latest.and_then(|d| d.consumer_group.clone()),
                event,
                reason,
                service: None,
                exception: None,
            }
        })
        .collect()
}

/// The health of the flow `key` of an answer: the tracker's when it tracks that flow (the same
/// status `/flows` lists), else `facts` assessed now against the learned model. Events with dead
/// letters fail, whichever it is; each missing reaction is diagnosed from the consumer groups'
/// positions against `events`.
pub fn flow_health(
    judge: Judge<'_>,
    key: &str,
    facts: impl FnOnce() -> FlowFacts,
    events: &EventsById<'_>,
    now_us: i64,
) -> FlowHealthBrief {
    let dead_letters = judge.dead_letters;
    let tracker = judge.health.tracker();
    let (health, tracked) = match tracker.health(key) {
        Some(h) => (h.clone(), true),
        None => {
            let mut facts = facts();
            for e in &mut facts.events {
                if let Some(latest) = latest(dead_letters, &e.id) {
                    e.failure = Some(latest.reason.clone());
                }
            }
            (facts.assess(tracker.model(), now_us), false)
        }
    };
    drop(tracker);
    let mut missing = missing_views(health.missing);
    diagnose(judge.groups, &mut missing, events, now_us);
    let mut status = health.status;
    let mut failures = failure_views(health.failures, dead_letters);
    // Handlers that raised fail the flow too, with the exception as the reason.
    let mut raised: Vec<(&SummaryRow, &FailureView)> = events
        .iter()
        .filter_map(|(id, e)| Some((*e, judge.handler_failures.get(*id)?)))
        .collect();
    raised.sort_by(|a, b| (a.0.time_us, &a.0.event_id).cmp(&(b.0.time_us, &b.0.event_id)));
    for (_, failure) in raised {
        status = FlowStatus::Failed;
        match failures.iter_mut().find(|f| f.event == failure.event) {
            Some(f) => {
                f.service = failure.service.clone();
                f.exception = failure.exception.clone();
                if f.group.is_none() {
                    f.group = failure.group.clone();
                }
            }
            None => failures.push(failure.clone()),
        }
    }
    if status == FlowStatus::Failed {
        // A failed flow waits for nothing more.
        missing.clear();
    }
    FlowHealthBrief {
        status,
        tracked,
        missing,
        failures,
        next_deadline: health.next_deadline_us.map(rfc3339),
        learning: health.learning,
    }
}

/// Tracked flows with `status` (any, when `None`), oldest first, at most `limit` (cut to
/// [`Limits::max_page`]); their failures named with their dead letters from `store`.
pub async fn flows(
    handle: &HealthHandle,
    groups: &GroupsHandle,
    store: &Store,
    status: Option<FlowStatus>,
    limit: i64,
    limits: &Limits,
) -> Result<FlowsPage, QueryError> {
    if limit < 1 {
        return Err(QueryError::Unusable(format!(
            "`limit` = {limit}: at least 1"
        )));
    }
    let limit = limit.min(limits.max_page) as usize;
    // One look at the tracker: the page and its counts agree.
    let (found, counts) = {
        let tracker = handle.tracker();
        (tracker.flows(status, limit), counts(&tracker))
    };
    let failed: Vec<String> = found
        .iter()
        .flat_map(|f| f.health.failures.iter().map(|x| x.event.clone()))
        .collect();
    let dead_letters = dead_letters_of(store, &failed).await?;
    let after: Vec<String> = found
        .iter()
        .flat_map(|f| f.health.missing.iter().map(|m| m.after_event.clone()))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let rows = store.summaries(&after).await?;
    let events: EventsById<'_> = rows.iter().map(|e| (e.event_id.as_str(), e)).collect();
    let now = chrono::Utc::now().timestamp_micros();
    let mut flows: Vec<FlowHealthView> =
        found.into_iter().map(|f| view(f, &dead_letters)).collect();
    for f in &mut flows {
        diagnose(groups, &mut f.missing, &events, now);
    }
    Ok(FlowsPage {
        flows,
        limit,
        counts,
    })
}

/// Counts per status and the stalled and failed flows grouped by where they stopped.
pub fn summary(handle: &HealthHandle) -> FlowsSummary {
    let tracker = handle.tracker();
    let (groups, counts) = (tracker.stopped_groups(OLDEST_PER_GROUP), counts(&tracker));
    drop(tracker);
    FlowsSummary {
        counts,
        stopped: groups
            .into_iter()
            .map(
                |StoppedGroup {
                     status,
                     after,
                     waiting_for,
                     flows,
                     oldest,
                 }| StoppedGroupView {
                    status,
                    after,
                    waiting_for,
                    flows,
                    oldest,
                },
            )
            .collect(),
        lagged_batches: handle.lagged(),
    }
}

/// The learned choreography.
pub fn model(handle: &HealthHandle) -> ModelAnswer {
    let tracker = handle.tracker();
    let config = tracker.model().config();
    ModelAnswer {
        min_samples: config.min_samples,
        min_support: config.min_support,
        steps: tracker.model().steps(),
    }
}
