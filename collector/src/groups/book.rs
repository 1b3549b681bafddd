//! The book of consumer-group positions: what the polls saw, kept per group and partition for a
//! while, and what it says about one event's record. Pure: it takes polls and time, and touches
//! no broker.
//!
//! # Positions
//! Kafka's committed offset is the *next* offset a group will read, so a group has read the
//! record at `offset` once its committed offset is greater than `offset`. Per group and
//! partition the book keeps the committed offsets it saw, and per partition the high watermarks,
//! for [`HISTORY`] (at most [`MAX_SAMPLES`] of each; a run of equal values is kept as its first
//! and last sample, so an idle partition costs two). From them:
//! - **consumed**: committed > offset; `consumed_at` is when the first of the polls that all show
//!   it past read the group's offsets (`None` when the oldest sample remembered already did);
//! - **pending**: `lag_records = offset + 1 - committed`, and `lag_seconds = lag_records / rate`,
//!   the rate being the committed offset's progress over the last [`RATE_SPAN`] (none when it did
//!   not move or fewer than two polls saw it);
//! - **inactive**: the group has no members, or its state is `Empty` or `Dead`.
//!
//! # Which service a group consumes for
//! [`GroupBook::service_of`] applies, in this order:
//! 1. **declared**: `[consumer_groups.services]` in the config file;
//! 2. **named**: the group's name is a known service's name, or starts with it followed by `-`,
//!    `.` or `_` (`bank-consumers` → `bank`); the longest such service wins. Known services are
//!    the declared ones and those [`GroupBook::set_reactors`] named (plus, in
//!    [`GroupBook::diagnose`], the expected one);
//! 3. **learned**: when exactly one group reading a topic has no service by the rules above and
//!    exactly one service reacting to that topic's events has no group, they are tied. A tie lasts
//!    as long as its group exists.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::config::GroupsConfig;
use super::position::{Diagnosis, DiagnosisKind, GroupPosition, GroupState};

/// How long positions are remembered.
pub const HISTORY: Duration = Duration::from_secs(600);
/// Most samples remembered per group and partition (and per partition's high watermark).
pub const MAX_SAMPLES: usize = 128;
/// The span a group's commit rate is measured over.
pub const RATE_SPAN: Duration = Duration::from_secs(60);

/// A topic partition.
pub type Partition = (String, i32);

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// An offset seen at a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When it was polled (µs).
    pub at_us: i64,
    /// The offset.
    pub offset: i64,
}

/// The offsets one partition showed over time, oldest first (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    samples: VecDeque<Sample>,
}

impl History {
    /// Adds a sample, forgetting those older than [`HISTORY`] before it (but the newest of them,
    /// which says what held when the window began).
    pub fn push(&mut self, sample: Sample) {
        let n = self.samples.len();
        if n >= 2
            && self.samples[n - 1].offset == sample.offset
            && self.samples[n - 2].offset == sample.offset
        {
            self.samples[n - 1].at_us = sample.at_us;
        } else {
            self.samples.push_back(sample);
        }
        let since = sample.at_us.saturating_sub(micros(HISTORY));
        while self.samples.len() > 2 && self.samples[1].at_us <= since {
            self.samples.pop_front();
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// The newest sample.
    pub fn latest(&self) -> Option<Sample> {
        self.samples.back().copied()
    }

    /// When the offset was first seen past `offset` and has stayed past it since; `None` when it
    /// is not past it now, or the oldest sample remembered already was.
    pub fn past_since(&self, offset: i64) -> Option<i64> {
        let run = self
            .samples
            .iter()
            .rev()
            .take_while(|s| s.offset > offset)
            .count();
        if run == 0 || run == self.samples.len() {
            return None;
        }
        Some(self.samples[self.samples.len() - run].at_us)
    }

    /// Offsets per second over the last [`RATE_SPAN`] (from the sample at its start, or the
    /// oldest one); `None` with fewer than two samples.
    pub fn rate(&self) -> Option<f64> {
        let latest = self.latest()?;
        let cutoff = latest.at_us - micros(RATE_SPAN);
        let i = self
            .samples
            .iter()
            .rposition(|s| s.at_us <= cutoff)
            .unwrap_or(0);
        let base = self.samples[i];
        // Inside a run of equal offsets the value at the cutoff is known exactly.
        let base_at = match self.samples.get(i + 1) {
            Some(next) if next.offset == base.offset && base.at_us < cutoff => cutoff,
            _ => base.at_us,
        };
        let span_us = latest.at_us - base_at;
        (span_us > 0).then(|| (latest.offset - base.offset) as f64 * 1e6 / span_us as f64)
    }
}

/// One consumer group, as the last poll described it.
#[derive(Debug, Clone, PartialEq)]
pub struct PolledGroup {
    /// Its state as the broker names it (`Stable`, `Empty`, `PreparingRebalance`, `Dead`, …).
    pub state: String,
    /// Its members.
    pub members: usize,
    /// Its committed offsets on the collected topics' partitions (valid offsets only); `None`
    /// when they could not be fetched (the book keeps what it knew).
    pub committed: Option<BTreeMap<Partition, i64>>,
    /// When its offsets were read (µs): the time of their samples, and so of `consumed_at`.
    pub read_at_us: i64,
}

/// What one poll of the cluster saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Poll {
    /// When (µs).
    pub at_us: i64,
    /// The topics polled: the collected ones.
    pub topics: BTreeSet<String>,
    /// Every consumer group but the collector's own, by name; `None` when the list could not be
    /// fetched (the book keeps what it knew).
    pub groups: Option<BTreeMap<String, PolledGroup>>,
    /// High watermarks (the offset the next record will get) of the partitions that answered.
    pub watermarks: BTreeMap<Partition, i64>,
}

/// One group as the book keeps it.
#[derive(Debug, Clone, Default, PartialEq)]
struct GroupEntry {
    state: String,
    members: usize,
    committed: BTreeMap<Partition, History>,
}

impl GroupEntry {
    fn inactive(&self) -> bool {
        self.members == 0
            || self.state.eq_ignore_ascii_case("empty")
            || self.state.eq_ignore_ascii_case("dead")
    }

    fn reads(&self, topic: &str) -> bool {
        self.committed.keys().any(|(t, _)| t == topic)
    }
}

/// One group's lag on one partition, for the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLag {
    /// The group.
    pub group: String,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// High watermark minus committed offset (never below 0).
    pub records: i64,
    /// `records` at the group's recent commit rate (0 when there is no lag); `None` when it has
    /// lag and does not move, or its rate is not known yet.
    pub seconds: Option<f64>,
}

/// Consumer-group positions (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupBook {
    declared: BTreeMap<String, String>,
    learned: BTreeMap<String, String>,
    reactors: BTreeMap<String, BTreeSet<String>>,
    polled_us: Option<i64>,
    topics: BTreeSet<String>,
    groups: BTreeMap<String, GroupEntry>,
    watermarks: BTreeMap<Partition, History>,
}

impl GroupBook {
    /// An empty book with the services `config` declares.
    pub fn new(config: &GroupsConfig) -> Self {
        Self {
            declared: config.services.clone(),
            ..Self::default()
        }
    }

    /// The groups the config file names.
    pub fn declared_groups(&self) -> impl Iterator<Item = &str> {
        self.declared.keys().map(String::as_str)
    }

    /// When the last poll was recorded (µs); `None` before the first.
    pub fn polled_at_us(&self) -> Option<i64> {
        self.polled_us
    }

    /// The groups known, by name.
    pub fn group_names(&self) -> impl Iterator<Item = &str> {
        self.groups.keys().map(String::as_str)
    }

    /// Records a poll: groups gone from the cluster are forgotten, what could not be fetched is
    /// kept as it was, and histories of topics no longer polled are dropped.
    pub fn record(&mut self, poll: Poll) {
        let at_us = poll.at_us;
        self.polled_us = Some(at_us);
        for (partition, offset) in poll.watermarks {
            self.watermarks
                .entry(partition)
                .or_default()
                .push(Sample { at_us, offset });
        }
        self.watermarks.retain(|(t, _), _| poll.topics.contains(t));
        if let Some(groups) = poll.groups {
            self.groups.retain(|name, _| groups.contains_key(name));
            self.learned.retain(|name, _| groups.contains_key(name));
            for (name, polled) in groups {
                let entry = self.groups.entry(name).or_default();
                entry.state = polled.state;
                entry.members = polled.members;
                if let Some(committed) = polled.committed {
                    entry.committed.retain(|p, _| committed.contains_key(p));
                    for (partition, offset) in committed {
                        entry.committed.entry(partition).or_default().push(Sample {
                            at_us: polled.read_at_us,
                            offset,
                        });
                    }
                }
            }
        }
        for entry in self.groups.values_mut() {
            entry.committed.retain(|(t, _), _| poll.topics.contains(t));
        }
        self.topics = poll.topics;
        self.learn();
    }

    /// Names the services that react to events of `topic` (from the learned choreography): the
    /// candidates of the name rule, and of the learned tie (see the module docs).
    pub fn set_reactors(&mut self, topic: &str, services: impl IntoIterator<Item = String>) {
        self.reactors
            .insert(topic.to_owned(), services.into_iter().collect());
        self.learn();
    }

    fn known_services(&self) -> BTreeSet<&str> {
        self.declared
            .values()
            .chain(self.reactors.values().flatten())
            .map(String::as_str)
            .collect()
    }

    /// The service whose reactions `group` produces, by the rules of the module docs.
    pub fn service_of(&self, group: &str) -> Option<String> {
        self.service_among(group, &self.known_services())
    }

    fn service_among(&self, group: &str, known: &BTreeSet<&str>) -> Option<String> {
        if let Some(s) = self.declared.get(group) {
            return Some(s.clone());
        }
        if let Some(s) = named_after(group, known.iter().copied()) {
            return Some(s.to_owned());
        }
        self.learned.get(group).cloned()
    }

    /// Ties, per topic, its one group without a service to its one reacting service without a
    /// group.
    fn learn(&mut self) {
        let known = self.known_services();
        let mut ties = Vec::new();
        for (topic, reactors) in &self.reactors {
            let unmapped: Vec<&str> = self
                .groups
                .iter()
                .filter(|(name, g)| {
                    g.reads(topic)
                        && !self.declared.contains_key(*name)
                        && named_after(name, known.iter().copied()).is_none()
                        && !self.learned.contains_key(*name)
                })
                .map(|(name, _)| name.as_str())
                .collect();
            let [group] = unmapped.as_slice() else {
                continue;
            };
            let served: BTreeSet<String> = self
                .groups
                .keys()
                .filter_map(|g| self.service_among(g, &known))
                .collect();
            let lonely: Vec<&String> = reactors.iter().filter(|s| !served.contains(*s)).collect();
            if let [service] = lonely.as_slice() {
                ties.push((group.to_string(), service.to_string()));
            }
        }
        self.learned.extend(ties);
    }

    /// Every group with committed offsets on `topic`, by name, against the record at
    /// `topic`/`partition`@`offset` (see the module docs).
    pub fn positions(&self, topic: &str, partition: i32, offset: i64) -> Vec<GroupPosition> {
        self.positions_among(topic, partition, offset, &self.known_services())
    }

    fn positions_among(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        known: &BTreeSet<&str>,
    ) -> Vec<GroupPosition> {
        let key = (topic.to_owned(), partition);
        self.groups
            .iter()
            .filter(|(_, g)| g.reads(topic))
            .map(|(name, g)| {
                let history = g.committed.get(&key);
                let committed = history.and_then(History::latest).map(|s| s.offset);
                let mut p = GroupPosition {
                    group: name.clone(),
                    service: self.service_among(name, known),
                    state: GroupState::Pending,
                    topic: topic.to_owned(),
                    partition,
                    offset,
                    committed_offset: committed,
                    lag_records: None,
                    lag_seconds: None,
                    consumed_at_us: None,
                };
                match (g.inactive(), committed, history) {
                    (true, _, _) => p.state = GroupState::Inactive,
                    (false, Some(c), Some(h)) if c > offset => {
                        p.state = GroupState::Consumed;
                        p.consumed_at_us = h.past_since(offset);
                    }
                    (false, Some(c), Some(h)) => {
                        let lag = offset + 1 - c;
                        p.lag_records = Some(lag);
                        p.lag_seconds = h.rate().filter(|r| *r > 0.0).map(|rate| lag as f64 / rate);
                    }
                    _ => {}
                }
                p
            })
            .collect()
    }

    /// Why the reaction `expected_service` (any service when `None`) owes the event
    /// `event_type` at `topic`/`partition`@`offset` is missing, as of `now_us`.
    ///
    /// The groups looked at are the expected service's ([`Self::service_of`]), else every group
    /// reading the topic. Among them: one still to reach the record makes it `lagging` (the
    /// reaction may come); else one without members makes it `inactive`; else all of them read it
    /// and it is `consumed_no_reaction`. No group reading the topic is `no_group`; no poll yet,
    /// a topic not polled yet or no group known to be the expected service's is `unknown`.
    pub fn diagnose(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        event_type: &str,
        expected_service: Option<&str>,
        now_us: i64,
    ) -> Diagnosis {
        let unknown = |text: String, groups| Diagnosis {
            kind: DiagnosisKind::Unknown,
            text,
            groups,
        };
        if self.polled_us.is_none() {
            return unknown("consumer groups have not been polled yet".into(), vec![]);
        }
        if !self.topics.contains(topic) {
            return unknown(
                format!("consumer-group positions on {topic} are not known yet"),
                vec![],
            );
        }
        let mut known = self.known_services();
        known.extend(expected_service);
        let all = self.positions_among(topic, partition, offset, &known);
        if all.is_empty() {
            return Diagnosis {
                kind: DiagnosisKind::NoGroup,
                text: format!("no consumer group reads {topic}"),
                groups: all,
            };
        }
        let groups: Vec<GroupPosition> = match expected_service {
            Some(s) => all
                .iter()
                .filter(|p| p.service.as_deref() == Some(s))
                .cloned()
                .collect(),
            None => all.clone(),
        };
        if groups.is_empty() {
            let readers: Vec<String> = all
                .iter()
                .map(|p| format!("`{}` ({})", p.group, p.state.as_str()))
                .collect();
            return unknown(
                format!(
                    "no group of {} is known among those reading {topic}: {}",
                    expected_service.unwrap_or_default(),
                    readers.join(", ")
                ),
                all,
            );
        }
        let record = format!("{topic}/{partition}@{offset}");
        let others = |n: usize| match n {
            0 => String::new(),
            1 => " (and 1 more group)".to_owned(),
            n => format!(" (and {n} more groups)"),
        };
        let of = |state| groups.iter().filter(move |p| p.state == state);
        let (kind, text) = if let Some(p) = of(GroupState::Pending)
            .max_by_key(|p| (p.committed_offset.is_none(), p.lag_records.unwrap_or(0)))
        {
            let n = of(GroupState::Pending).count() - 1;
            let text = match (p.lag_records, p.lag_seconds) {
                (Some(lag), Some(secs)) => format!(
                    "{} is {} behind on {topic}/{partition} (≈ {}){}",
                    who(p),
                    count(lag, "record"),
                    span(secs),
                    others(n)
                ),
                (Some(lag), None) => format!(
                    "{} is {} behind on {topic}/{partition}{}",
                    who(p),
                    count(lag, "record"),
                    others(n)
                ),
                _ => format!(
                    "{} has committed no offset on {topic}/{partition}{}",
                    who(p),
                    others(n)
                ),
            };
            (DiagnosisKind::Lagging, text)
        } else if let Some(p) = of(GroupState::Inactive).next() {
            let n = of(GroupState::Inactive).count() - 1;
            let state = self
                .groups
                .get(&p.group)
                .map(|g| g.state.as_str())
                .filter(|s| !s.eq_ignore_ascii_case("empty") && !s.is_empty())
                .map(|s| format!(" ({s})"))
                .unwrap_or_default();
            (
                DiagnosisKind::Inactive,
                format!("{} has no members{state}{}", who(p), others(n)),
            )
        } else {
            // Every group looked at has consumed it: name the one that did longest ago.
            let p = groups
                .iter()
                .min_by_key(|p| p.consumed_at_us.unwrap_or(i64::MIN))
                .expect("groups is not empty");
            let when = p
                .consumed_at_us
                .map(|at| format!(" {} ago", span((now_us - at).max(0) as f64 / 1e6)))
                .unwrap_or_default();
            (
                DiagnosisKind::ConsumedNoReaction,
                format!(
                    "{} consumed {event_type} ({record}){when} and produced nothing{}",
                    who(p),
                    others(groups.len() - 1)
                ),
            )
        };
        Diagnosis { kind, text, groups }
    }

    /// Every group's lag on every partition whose committed offset and high watermark are
    /// known, for the metrics.
    pub fn lags(&self) -> Vec<GroupLag> {
        let mut lags = Vec::new();
        for (group, g) in &self.groups {
            for (key, history) in &g.committed {
                let (Some(c), Some(high)) = (
                    history.latest(),
                    self.watermarks.get(key).and_then(History::latest),
                ) else {
                    continue;
                };
                let records = (high.offset - c.offset).max(0);
                let seconds = if records == 0 {
                    Some(0.0)
                } else {
                    history
                        .rate()
                        .filter(|r| *r > 0.0)
                        .map(|r| records as f64 / r)
                };
                lags.push(GroupLag {
                    group: group.clone(),
                    topic: key.0.clone(),
                    partition: key.1,
                    records,
                    seconds,
                });
            }
        }
        lags
    }
}

/// The longest of `services` that `group` is named after: the same name, or it followed by `-`,
/// `.` or `_`.
pub fn named_after<'a>(group: &str, services: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    services
        .filter(|s| {
            !s.is_empty()
                && group
                    .strip_prefix(*s)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['-', '.', '_']))
        })
        .max_by_key(|s| s.len())
}

/// "bank's group `bank`", or "group `x`" when its service is not known.
fn who(p: &GroupPosition) -> String {
    match &p.service {
        Some(s) => format!("{s}'s group `{}`", p.group),
        None => format!("group `{}`", p.group),
    }
}

/// "3 200 records", "1 record".
fn count(n: i64, what: &str) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    let sign = if n < 0 { "-" } else { "" };
    let plural = if n == 1 { "" } else { "s" };
    format!("{sign}{grouped} {what}{plural}")
}

/// "40 s", "3 min", "2 h".
fn span(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{} s", seconds.round() as i64)
    } else if seconds < 7200.0 {
        format!("{} min", (seconds / 60.0).round() as i64)
    } else {
        format!("{} h", (seconds / 3600.0).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn history(samples: &[(i64, i64)]) -> History {
        let mut h = History::default();
        for &(at_s, offset) in samples {
            h.push(Sample {
                at_us: at_s * S,
                offset,
            });
        }
        h
    }

    /// A poll at `at_s` seconds of topic `payments` (4 partitions) with `groups` as
    /// (name, state, members, committed on payments/2).
    fn poll(at_s: i64, high: i64, groups: &[(&str, &str, usize, Option<i64>)]) -> Poll {
        Poll {
            at_us: at_s * S,
            topics: ["payments".to_owned()].into(),
            groups: Some(
                groups
                    .iter()
                    .map(|&(name, state, members, committed)| {
                        (
                            name.to_owned(),
                            PolledGroup {
                                state: state.to_owned(),
                                members,
                                committed: Some(
                                    committed
                                        .map(|c| (("payments".to_owned(), 2), c))
                                        .into_iter()
                                        .collect(),
                                ),
                                read_at_us: at_s * S,
                            },
                        )
                    })
                    .collect(),
            ),
            watermarks: [(("payments".to_owned(), 2), high)].into(),
        }
    }

    fn book(polls: impl IntoIterator<Item = Poll>) -> GroupBook {
        let mut book = GroupBook::default();
        for p in polls {
            book.record(p);
        }
        book
    }

    fn only(book: &GroupBook, offset: i64) -> GroupPosition {
        let mut positions = book.positions("payments", 2, offset);
        assert_eq!(positions.len(), 1, "{positions:?}");
        positions.remove(0)
    }

    #[test]
    fn a_committed_offset_past_the_record_means_consumed_and_at_it_means_pending() {
        let b = book([poll(0, 200, &[("bank", "Stable", 1, Some(100))])]);
        assert_eq!(only(&b, 99).state, GroupState::Consumed);
        let at = only(&b, 100);
        assert_eq!(at.state, GroupState::Pending, "100 is the next to read");
        assert_eq!(
            at.lag_records,
            Some(1),
            "the record itself is still to read"
        );
        assert_eq!(only(&b, 150).lag_records, Some(51));
        assert_eq!(at.committed_offset, Some(100));
    }

    #[test]
    fn consumed_at_is_the_first_poll_that_saw_the_offset_passed() {
        let b = book([
            poll(0, 200, &[("bank", "Stable", 1, Some(100))]),
            poll(5, 200, &[("bank", "Stable", 1, Some(120))]),
            poll(10, 200, &[("bank", "Stable", 1, Some(140))]),
        ]);
        assert_eq!(only(&b, 110).consumed_at_us, Some(5 * S));
        assert_eq!(only(&b, 130).consumed_at_us, Some(10 * S));
    }

    #[test]
    fn consumed_at_is_unknown_when_the_first_poll_already_saw_it_passed() {
        let b = book([
            poll(0, 200, &[("bank", "Stable", 1, Some(100))]),
            poll(5, 200, &[("bank", "Stable", 1, Some(120))]),
        ]);
        let p = only(&b, 50);
        assert_eq!(p.state, GroupState::Consumed);
        assert_eq!(p.consumed_at_us, None);
    }

    #[test]
    fn an_offset_reset_below_the_record_makes_it_pending_again_and_resets_consumed_at() {
        let b = book([
            poll(0, 200, &[("bank", "Stable", 1, Some(100))]),
            poll(5, 200, &[("bank", "Stable", 1, Some(10))]),
            poll(10, 200, &[("bank", "Stable", 1, Some(60))]),
        ]);
        assert_eq!(only(&b, 70).state, GroupState::Pending);
        assert_eq!(only(&b, 50).consumed_at_us, Some(10 * S));
    }

    #[test]
    fn lag_seconds_is_the_lag_at_the_commit_rate_of_the_last_minute() {
        // 10 records/s for the last minute (slower before: it does not count).
        let b = book([
            poll(0, 2000, &[("bank", "Stable", 1, Some(0))]),
            poll(60, 2000, &[("bank", "Stable", 1, Some(100))]),
            poll(90, 2000, &[("bank", "Stable", 1, Some(400))]),
            poll(120, 2000, &[("bank", "Stable", 1, Some(700))]),
        ]);
        let p = only(&b, 899);
        assert_eq!(p.lag_records, Some(200));
        assert_eq!(p.lag_seconds, Some(20.0));
    }

    #[test]
    fn lag_seconds_is_unknown_after_one_poll_and_when_the_group_does_not_move() {
        let one = book([poll(0, 200, &[("bank", "Stable", 1, Some(100))])]);
        assert_eq!(only(&one, 150).lag_seconds, None);
        let stuck = book((0..30).map(|i| poll(i * 5, 200, &[("bank", "Stable", 1, Some(100))])));
        assert_eq!(only(&stuck, 150).lag_seconds, None);
    }

    #[test]
    fn a_run_of_equal_offsets_costs_two_samples_and_still_gives_the_rate() {
        let mut h = history(&[(0, 10), (5, 10), (10, 10), (15, 10)]);
        assert_eq!(h.samples.len(), 2);
        assert_eq!(h.rate(), Some(0.0));
        h.push(Sample {
            at_us: 75 * S,
            offset: 70,
        });
        // The value at the minute's start (15 s) is known: 10 → 70 over 60 s.
        assert_eq!(h.rate(), Some(1.0));
    }

    #[test]
    fn history_forgets_samples_older_than_ten_minutes_but_the_one_at_the_window_start() {
        let h = history(&(0..200).map(|i| (i * 5, i)).collect::<Vec<_>>());
        let oldest = h.samples.front().unwrap().at_us;
        assert!(oldest <= (995 - 600) * S, "{oldest}");
        assert!(h.samples.len() <= MAX_SAMPLES);
    }

    #[test]
    fn a_group_without_members_or_empty_is_inactive_whatever_its_offsets() {
        let b = book([poll(
            0,
            200,
            &[
                ("left", "Empty", 0, Some(150)),
                ("crashed", "Stable", 0, Some(10)),
                ("gone", "Dead", 0, Some(10)),
            ],
        )]);
        let states: Vec<_> = b
            .positions("payments", 2, 100)
            .iter()
            .map(|p| (p.group.clone(), p.state, p.committed_offset))
            .collect();
        assert_eq!(
            states,
            [
                ("crashed".into(), GroupState::Inactive, Some(10)),
                ("gone".into(), GroupState::Inactive, Some(10)),
                ("left".into(), GroupState::Inactive, Some(150)),
            ]
        );
    }

    #[test]
    fn only_groups_with_offsets_on_the_topic_have_a_position() {
        let b = book([poll(
            0,
            200,
            &[("bank", "Stable", 1, Some(5)), ("idle", "Stable", 1, None)],
        )]);
        assert_eq!(only(&b, 1).group, "bank");
        assert!(b.positions("orders", 0, 1).is_empty());
    }

    #[test]
    fn a_group_that_reads_the_topic_but_committed_nothing_on_the_partition_is_pending_without_lag()
    {
        let mut p = poll(0, 200, &[("bank", "Stable", 1, Some(5))]);
        p.groups
            .as_mut()
            .unwrap()
            .get_mut("bank")
            .unwrap()
            .committed = Some([(("payments".to_owned(), 0), 9)].into());
        let b = book([p]);
        let at = only(&b, 1);
        assert_eq!(
            (at.state, at.committed_offset, at.lag_records),
            (GroupState::Pending, None, None)
        );
    }

    #[test]
    fn a_group_gone_from_the_list_is_forgotten_and_a_failed_fetch_keeps_what_was_known() {
        let mut b = book([poll(
            0,
            200,
            &[
                ("bank", "Stable", 1, Some(5)),
                ("old", "Stable", 1, Some(5)),
            ],
        )]);
        let mut p = poll(5, 200, &[("bank", "Stable", 1, None)]);
        p.groups
            .as_mut()
            .unwrap()
            .get_mut("bank")
            .unwrap()
            .committed = None;
        b.record(p);
        assert_eq!(b.group_names().collect::<Vec<_>>(), ["bank"]);
        assert_eq!(only(&b, 1).committed_offset, Some(5));
        b.record(Poll {
            groups: None,
            ..poll(10, 200, &[])
        });
        assert_eq!(b.group_names().collect::<Vec<_>>(), ["bank"]);
        assert_eq!(b.polled_at_us(), Some(10 * S));
    }

    #[test]
    fn a_declared_service_comes_before_the_name() {
        let config = GroupsConfig {
            services: [("bank-consumers".to_owned(), "ledger".to_owned())].into(),
            ..GroupsConfig::default()
        };
        let mut b = GroupBook::new(&config);
        b.set_reactors("payments", ["bank".to_owned()]);
        assert_eq!(b.service_of("bank-consumers").as_deref(), Some("ledger"));
    }

    #[test]
    fn a_group_named_after_a_service_or_its_name_and_a_separator_is_that_services() {
        let mut b = GroupBook::default();
        b.set_reactors(
            "payments",
            ["bank".to_owned(), "bank-audit".to_owned(), "inv".to_owned()],
        );
        assert_eq!(b.service_of("bank").as_deref(), Some("bank"));
        assert_eq!(b.service_of("bank-group").as_deref(), Some("bank"));
        assert_eq!(b.service_of("bank.v2").as_deref(), Some("bank"));
        assert_eq!(b.service_of("bank_2").as_deref(), Some("bank"));
        assert_eq!(
            b.service_of("bank-audit-1").as_deref(),
            Some("bank-audit"),
            "the longest service name wins"
        );
        assert_eq!(b.service_of("banking"), None, "no separator, no match");
        assert_eq!(b.service_of("inventory"), None);
    }

    #[test]
    fn the_one_unnamed_group_of_a_topic_is_tied_to_its_one_unmapped_reacting_service() {
        let mut b = book([poll(
            0,
            200,
            &[
                ("bank", "Stable", 1, Some(5)),
                ("x-17", "Stable", 1, Some(5)),
            ],
        )]);
        b.set_reactors("payments", ["bank".to_owned(), "ledger".to_owned()]);
        assert_eq!(b.service_of("bank").as_deref(), Some("bank"));
        assert_eq!(b.service_of("x-17").as_deref(), Some("ledger"));
    }

    #[test]
    fn no_tie_is_learned_when_two_groups_or_two_services_are_unmapped() {
        let mut two_groups = book([poll(
            0,
            200,
            &[("a-1", "Stable", 1, Some(5)), ("b-1", "Stable", 1, Some(5))],
        )]);
        two_groups.set_reactors("payments", ["ledger".to_owned()]);
        assert_eq!(two_groups.service_of("a-1"), None);
        let mut two_services = book([poll(0, 200, &[("a-1", "Stable", 1, Some(5))])]);
        two_services.set_reactors("payments", ["ledger".to_owned(), "audit".to_owned()]);
        assert_eq!(two_services.service_of("a-1"), None);
    }

    #[test]
    fn a_learned_tie_lasts_while_its_group_exists() {
        let mut b = book([poll(0, 200, &[("x-17", "Stable", 1, Some(5))])]);
        b.set_reactors("payments", ["ledger".to_owned()]);
        b.record(poll(
            5,
            200,
            &[
                ("x-17", "Stable", 1, Some(5)),
                ("y-3", "Stable", 1, Some(5)),
            ],
        ));
        assert_eq!(b.service_of("x-17").as_deref(), Some("ledger"));
        b.record(poll(10, 200, &[("y-3", "Stable", 1, Some(5))]));
        assert_eq!(
            b.service_of("y-3").as_deref(),
            Some("ledger"),
            "x-17 is gone: y-3 is now the only unnamed group"
        );
    }

    #[test]
    fn diagnosis_consumed_no_reaction_says_when_the_group_read_it() {
        let mut b = book([
            poll(0, 2000, &[("bank", "Stable", 1, Some(1000))]),
            poll(5, 2000, &[("bank", "Stable", 1, Some(1300))]),
        ]);
        b.set_reactors("payments", ["bank".to_owned()]);
        let d = b.diagnose("payments", 2, 1234, "PaymentCreated", Some("bank"), 45 * S);
        assert_eq!(d.kind, DiagnosisKind::ConsumedNoReaction);
        assert_eq!(
            d.text,
            "bank's group `bank` consumed PaymentCreated (payments/2@1234) 40 s ago and produced nothing"
        );
        assert_eq!(d.groups.len(), 1);
    }

    #[test]
    fn diagnosis_lagging_says_how_far_behind_and_how_long() {
        let b = book([
            poll(0, 9000, &[("bank", "Stable", 1, Some(1000))]),
            poll(60, 9000, &[("bank", "Stable", 1, Some(1480))]),
        ]);
        // 8 records/s; 3 200 records to read up to 4679.
        let d = b.diagnose("payments", 2, 4679, "PaymentCreated", Some("bank"), 60 * S);
        assert_eq!(d.kind, DiagnosisKind::Lagging);
        assert_eq!(
            d.text,
            "bank's group `bank` is 3 200 records behind on payments/2 (≈ 7 min)"
        );
    }

    #[test]
    fn diagnosis_inactive_names_the_group_without_members() {
        let b = book([poll(0, 200, &[("bank", "Empty", 0, Some(10))])]);
        let d = b.diagnose("payments", 2, 50, "PaymentCreated", Some("bank"), S);
        assert_eq!(d.kind, DiagnosisKind::Inactive);
        assert_eq!(d.text, "bank's group `bank` has no members");
    }

    #[test]
    fn diagnosis_prefers_a_lagging_group_of_the_service_over_one_that_consumed() {
        let b = book([poll(
            0,
            200,
            &[
                ("bank-a", "Stable", 1, Some(100)),
                ("bank-b", "Stable", 1, Some(10)),
            ],
        )]);
        let d = b.diagnose("payments", 2, 50, "PaymentCreated", Some("bank"), S);
        assert_eq!(d.kind, DiagnosisKind::Lagging);
        assert!(
            d.text
                .starts_with("bank's group `bank-b` is 41 records behind"),
            "{}",
            d.text
        );
        assert_eq!(d.groups.len(), 2);
    }

    #[test]
    fn diagnosis_no_group_when_nobody_reads_the_topic() {
        let b = book([poll(0, 200, &[("other", "Stable", 1, None)])]);
        let d = b.diagnose("payments", 2, 50, "PaymentCreated", Some("bank"), S);
        assert_eq!(d.kind, DiagnosisKind::NoGroup);
        assert_eq!(d.text, "no consumer group reads payments");
    }

    #[test]
    fn diagnosis_unknown_before_the_first_poll_and_for_a_topic_not_polled() {
        let never = GroupBook::default();
        let d = never.diagnose("payments", 2, 50, "PaymentCreated", None, S);
        assert_eq!(d.kind, DiagnosisKind::Unknown);
        let b = book([poll(0, 200, &[("bank", "Stable", 1, Some(5))])]);
        assert_eq!(
            b.diagnose("orders", 0, 1, "OrderCreated", None, S).kind,
            DiagnosisKind::Unknown
        );
    }

    #[test]
    fn diagnosis_unknown_when_no_group_of_the_expected_service_is_known_says_who_reads() {
        let b = book([poll(0, 200, &[("x-17", "Stable", 1, Some(100))])]);
        let d = b.diagnose("payments", 2, 50, "PaymentCreated", Some("bank"), S);
        assert_eq!(d.kind, DiagnosisKind::Unknown);
        assert_eq!(
            d.text,
            "no group of bank is known among those reading payments: `x-17` (consumed)"
        );
        assert_eq!(d.groups.len(), 1);
    }

    #[test]
    fn diagnosis_without_an_expected_service_looks_at_every_group_of_the_topic() {
        let b = book([poll(0, 200, &[("x-17", "Stable", 1, Some(100))])]);
        let d = b.diagnose("payments", 2, 50, "PaymentCreated", None, S);
        assert_eq!(d.kind, DiagnosisKind::ConsumedNoReaction);
        assert_eq!(
            d.text,
            "group `x-17` consumed PaymentCreated (payments/2@50) and produced nothing"
        );
    }

    #[test]
    fn lags_are_the_high_watermark_minus_the_committed_offset() {
        let b = book([
            poll(
                0,
                500,
                &[
                    ("bank", "Stable", 1, Some(100)),
                    ("done", "Stable", 1, Some(500)),
                ],
            ),
            poll(
                10,
                500,
                &[
                    ("bank", "Stable", 1, Some(200)),
                    ("done", "Stable", 1, Some(500)),
                ],
            ),
        ]);
        let lags = b.lags();
        assert_eq!(
            lags,
            [
                GroupLag {
                    group: "bank".into(),
                    topic: "payments".into(),
                    partition: 2,
                    records: 300,
                    seconds: Some(30.0)
                },
                GroupLag {
                    group: "done".into(),
                    topic: "payments".into(),
                    partition: 2,
                    records: 0,
                    seconds: Some(0.0)
                }
            ]
        );
    }

    #[test]
    fn counts_group_their_digits_by_three() {
        assert_eq!(count(1, "record"), "1 record");
        assert_eq!(count(3200, "record"), "3 200 records");
        assert_eq!(count(1_234_567, "record"), "1 234 567 records");
        assert_eq!(count(999, "record"), "999 records");
    }
}
