//! Flow health's settings: the thresholds that make a learned reaction an expectation, when an
//! expected reaction is overdue, and the expectations users declare, like an SLO.
//!
//! In TOML (the `[health]` table of the config file):
//!
//! ```toml
//! [health]
//! min_samples = 20        # settled occurrences of a step before anything is expected after it
//! min_support = 0.9       # share of those a reaction must follow to be expected
//! horizon = 200           # occurrences the model remembers (per-occurrence decay)
//! stall_factor = 3.0      # an expected reaction is overdue after its p99 × this …
//! stall_floor = "10s"     # … and never sooner than this
//!
//! [[health.expect]]       # declared: replaces what was learned for this step
//! after = "payment/PaymentCreated"
//! expect = "bank"         # a service, SERVICE/TYPE, or "*" for any reaction
//! within = "30s"
//!
//! [[health.expect]]
//! after = "notification/EmailSent"
//! terminal = true         # nothing is expected after it
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::step::{LatencySummary, Reaction, Step};
use crate::rules::toml_error_line;

/// Settled occurrences of a step before anything is expected after it (the issue asks for at
/// most 20).
pub const DEFAULT_MIN_SAMPLES: u64 = 20;
/// Share of a step's occurrences a reaction must follow to be expected.
pub const DEFAULT_MIN_SUPPORT: f64 = 0.9;
/// Occurrences of a step the model remembers: each new one decays the others by `1 - 1/horizon`.
pub const DEFAULT_HORIZON: u64 = 200;
/// An expected reaction is overdue once later than its learned p99 times this …
pub const DEFAULT_STALL_FACTOR: f64 = 3.0;
/// … and never before this long after its cause.
pub const DEFAULT_STALL_FLOOR: Duration = Duration::from_secs(10);

/// A `[health]` table that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum HealthConfigError {
    /// The table does not parse.
    #[error("[health]: {0}")]
    Parse(String),
    /// A threshold is out of its range.
    #[error("[health] {name} = {value}: {why}")]
    OutOfRange {
        /// The setting.
        name: &'static str,
        /// Its value.
        value: String,
        /// Its range.
        why: &'static str,
    },
    /// A declared expectation cannot be used.
    #[error("[[health.expect]] #{index} (after = `{after}`): {why}")]
    Declaration {
        /// Its position in the file, from 1.
        index: usize,
        /// Its `after`.
        after: String,
        /// What is wrong.
        why: String,
    },
}

/// An expectation declared in the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    /// The step it follows.
    pub after: Step,
    /// The expected reaction; `None` when the step is declared terminal.
    pub expect: Option<Reaction>,
    /// How long after the step's event the reaction is due (`None` when terminal).
    pub within: Option<Duration>,
}

/// Flow health's settings (see the module docs for the TOML).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthConfig {
    /// Whether the collector tracks flow health at all (`enabled = false`, or `collect
    /// --no-flow-health`: the flow answers then assess each flow against an empty model).
    pub enabled: bool,
    /// Settled occurrences of a step before anything is expected after it.
    pub min_samples: u64,
    /// Share of a step's occurrences a reaction must follow to be expected.
    pub min_support: f64,
    /// Occurrences of a step the model remembers.
    pub horizon: u64,
    /// Overdue after the learned p99 times this …
    pub stall_factor: f64,
    /// … and never sooner than this.
    pub stall_floor: Duration,
    /// Declared expectations, in file order.
    pub declared: Vec<Declared>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_samples: DEFAULT_MIN_SAMPLES,
            min_support: DEFAULT_MIN_SUPPORT,
            horizon: DEFAULT_HORIZON,
            stall_factor: DEFAULT_STALL_FACTOR,
            stall_floor: DEFAULT_STALL_FLOOR,
            declared: Vec::new(),
        }
    }
}

/// The `[health]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HealthTable {
    enabled: Option<bool>,
    min_samples: Option<u64>,
    min_support: Option<f64>,
    horizon: Option<u64>,
    stall_factor: Option<f64>,
    #[serde(default, with = "humantime_serde")]
    stall_floor: Option<Duration>,
    #[serde(default)]
    expect: Vec<ExpectEntry>,
}

/// One `[[health.expect]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectEntry {
    after: String,
    expect: Option<String>,
    #[serde(default, with = "humantime_serde")]
    within: Option<Duration>,
    #[serde(default)]
    terminal: bool,
}

impl HealthConfig {
    /// Reads the `[health]` table (given as TOML text of its contents, e.g. what follows
    /// `[health]`), checking every value.
    pub fn from_toml(text: &str) -> Result<Self, HealthConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| HealthConfigError::Parse(toml_error_line(&e)))?;
        Self::from_table(table)
    }

    /// Reads the `[health]` table, already parsed as TOML, checking every value.
    pub fn from_table(table: toml::Table) -> Result<Self, HealthConfigError> {
        let table: HealthTable = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| HealthConfigError::Parse(toml_error_line(&e)))?;
        let defaults = Self::default();
        let config = Self {
            enabled: table.enabled.unwrap_or(defaults.enabled),
            min_samples: table.min_samples.unwrap_or(defaults.min_samples),
            min_support: table.min_support.unwrap_or(defaults.min_support),
            horizon: table.horizon.unwrap_or(defaults.horizon),
            stall_factor: table.stall_factor.unwrap_or(defaults.stall_factor),
            stall_floor: table.stall_floor.unwrap_or(defaults.stall_floor),
            declared: table
                .expect
                .into_iter()
                .enumerate()
                .map(|(i, e)| declared(i + 1, e))
                .collect::<Result<_, _>>()?,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), HealthConfigError> {
        let out = |name, value: String, why| HealthConfigError::OutOfRange { name, value, why };
        if !(self.min_support > 0.0 && self.min_support <= 1.0) {
            return Err(out(
                "min_support",
                self.min_support.to_string(),
                "a share in (0, 1]",
            ));
        }
        if self.min_samples == 0 {
            return Err(out("min_samples", "0".into(), "at least 1"));
        }
        if self.horizon < self.min_samples {
            return Err(out(
                "horizon",
                self.horizon.to_string(),
                "at least min_samples: the model must remember enough occurrences to expect anything",
            ));
        }
        if !(self.stall_factor >= 1.0 && self.stall_factor.is_finite()) {
            return Err(out(
                "stall_factor",
                self.stall_factor.to_string(),
                "at least 1",
            ));
        }
        Ok(())
    }

    /// The declarations for `step`, when there are any (they replace what was learned for it).
    pub fn declared_for(&self, step: &Step) -> Option<Vec<&Declared>> {
        let found: Vec<&Declared> = self.declared.iter().filter(|d| &d.after == step).collect();
        (!found.is_empty()).then_some(found)
    }

    /// How long after its cause a learned reaction with this latency distribution is due:
    /// its p99 times [`HealthConfig::stall_factor`], at least [`HealthConfig::stall_floor`].
    pub fn deadline(&self, latency: Option<&LatencySummary>) -> Duration {
        let scaled = latency
            .map(|l| Duration::from_secs_f64(l.p99_ms / 1000.0 * self.stall_factor))
            .unwrap_or_default();
        scaled.max(self.stall_floor)
    }
}

fn declared(index: usize, e: ExpectEntry) -> Result<Declared, HealthConfigError> {
    let fail = |why: String| HealthConfigError::Declaration {
        index,
        after: e.after.clone(),
        why,
    };
    let after = match e.after.split_once('/') {
        Some((service, event_type)) if !service.is_empty() && !event_type.is_empty() => {
            Step::new(service, event_type)
        }
        _ => return Err(fail("`after` must be SERVICE/TYPE".into())),
    };
    if e.terminal {
        if e.expect.is_some() || e.within.is_some() {
            return Err(fail(
                "a terminal step takes neither `expect` nor `within`".into(),
            ));
        }
        return Ok(Declared {
            after,
            expect: None,
            within: None,
        });
    }
    let Some(expect) = &e.expect else {
        return Err(fail("needs `expect` (or `terminal = true`)".into()));
    };
    let reaction = match expect.split_once('/') {
        _ if expect == "*" => Reaction::Any,
        None if !expect.is_empty() => Reaction::ByService {
            service: expect.clone(),
        },
        Some((service, event_type)) if !service.is_empty() && !event_type.is_empty() => {
            Reaction::Specific {
                service: service.into(),
                event_type: event_type.into(),
            }
        }
        _ => {
            return Err(fail(format!(
                "`expect` = `{expect}` is not SERVICE, SERVICE/TYPE or *"
            )))
        }
    };
    let Some(within) = e.within else {
        return Err(fail("needs `within`, e.g. \"30s\"".into()));
    };
    Ok(Declared {
        after,
        expect: Some(reaction),
        within: Some(within),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_takes_every_default() {
        assert_eq!(
            HealthConfig::from_toml("").unwrap(),
            HealthConfig::default()
        );
    }

    #[test]
    fn thresholds_and_declarations_are_read() {
        let config = HealthConfig::from_toml(
            r#"
            min_samples = 5
            stall_floor = "2m"
            [[expect]]
            after = "payment/PaymentCreated"
            expect = "bank"
            within = "30s"
            [[expect]]
            after = "order/OrderCreated"
            expect = "payment/PaymentCreated"
            within = "1500ms"
            [[expect]]
            after = "notification/EmailSent"
            terminal = true
            [[expect]]
            after = "shop/CartCheckedOut"
            expect = "*"
            within = "5s"
            "#,
        )
        .unwrap();
        assert_eq!(config.min_samples, 5);
        assert_eq!(config.stall_floor, Duration::from_secs(120));
        let reactions: Vec<(String, Option<Reaction>, Option<Duration>)> = config
            .declared
            .iter()
            .map(|d| (d.after.to_string(), d.expect.clone(), d.within))
            .collect();
        assert_eq!(
            reactions,
            [
                (
                    "payment/PaymentCreated".into(),
                    Some(Reaction::ByService {
                        service: "bank".into()
                    }),
                    Some(Duration::from_secs(30))
                ),
                (
                    "order/OrderCreated".into(),
                    Some(Reaction::Specific {
                        service: "payment".into(),
                        event_type: "PaymentCreated".into()
                    }),
                    Some(Duration::from_millis(1500))
                ),
                ("notification/EmailSent".into(), None, None),
                (
                    "shop/CartCheckedOut".into(),
                    Some(Reaction::Any),
                    Some(Duration::from_secs(5))
                ),
            ]
        );
    }

    #[test]
    fn every_unusable_value_is_refused_in_one_line_that_names_it() {
        let cases = [
            ("min_support = 1.5", "min_support = 1.5"),
            ("min_samples = 0", "min_samples = 0"),
            ("horizon = 5", "horizon = 5"),
            ("stall_factor = 0.5", "stall_factor = 0.5"),
            ("stall_floor = \"soon\"", "[health]:"),
            ("colour = \"red\"", "unknown field `colour`"),
            (
                "[[expect]]\nafter = \"payment\"\nexpect = \"bank\"\nwithin = \"1s\"",
                "SERVICE/TYPE",
            ),
            (
                "[[expect]]\nafter = \"a/B\"\nwithin = \"1s\"",
                "needs `expect`",
            ),
            (
                "[[expect]]\nafter = \"a/B\"\nexpect = \"bank\"",
                "needs `within`",
            ),
            (
                "[[expect]]\nafter = \"a/B\"\nexpect = \"bank/\"\nwithin = \"1s\"",
                "is not SERVICE",
            ),
            (
                "[[expect]]\nafter = \"a/B\"\nterminal = true\nexpect = \"c\"",
                "terminal step takes",
            ),
        ];
        for (toml, says) in cases {
            let error = HealthConfig::from_toml(toml).unwrap_err().to_string();
            assert!(
                error.contains(says),
                "`{toml}` gave `{error}`, not one naming `{says}`"
            );
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }

    #[test]
    fn a_declaration_names_its_position_and_step() {
        let error = HealthConfig::from_toml(
            "[[expect]]\nafter = \"a/B\"\nterminal = true\n[[expect]]\nafter = \"c/D\"\nexpect = \"e\"",
        )
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "[[health.expect]] #2 (after = `c/D`): needs `within`, e.g. \"30s\""
        );
    }
}
