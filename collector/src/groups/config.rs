//! Consumer-group positions' settings: how often the cluster's groups are polled, and which
//! service each group consumes for, where its name does not say.
//!
//! In TOML (the `[consumer_groups]` table of the config file):
//!
//! ```toml
//! [consumer_groups]
//! poll_every = "5s"              # "0s" turns polling off
//!
//! [consumer_groups.services]     # group = the service whose reactions it produces
//! "bank-consumers" = "bank"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::rules::toml_error_line;

/// How often the cluster's consumer groups are polled by default.
pub const DEFAULT_POLL_EVERY: Duration = Duration::from_secs(5);

/// A `[consumer_groups]` table that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum GroupsConfigError {
    /// The table does not parse.
    #[error("[consumer_groups]: {0}")]
    Parse(String),
    /// A group or service name in `[consumer_groups.services]` is empty.
    #[error("[consumer_groups.services] `{group}` = `{service}`: {why}")]
    Service {
        /// The group as written.
        group: String,
        /// The service as written.
        service: String,
        /// What is wrong.
        why: &'static str,
    },
}

/// Consumer-group positions' settings (see the module docs for the TOML).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsConfig {
    /// How often the groups are polled; zero turns polling off.
    pub poll_every: Duration,
    /// Group → the service whose reactions it produces, declared (the first rule of
    /// [`super::book::GroupBook::service_of`]).
    pub services: BTreeMap<String, String>,
}

impl Default for GroupsConfig {
    fn default() -> Self {
        Self {
            poll_every: DEFAULT_POLL_EVERY,
            services: BTreeMap::new(),
        }
    }
}

/// The `[consumer_groups]` table as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupsTable {
    #[serde(default, with = "humantime_serde")]
    poll_every: Option<Duration>,
    #[serde(default)]
    services: BTreeMap<String, String>,
}

impl GroupsConfig {
    /// Reads the `[consumer_groups]` table (given as TOML text of its contents, e.g. what follows
    /// `[consumer_groups]`), checking every value.
    pub fn from_toml(text: &str) -> Result<Self, GroupsConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| GroupsConfigError::Parse(toml_error_line(&e)))?;
        Self::from_table(table)
    }

    /// Reads the `[consumer_groups]` table, already parsed as TOML, checking every value.
    pub fn from_table(table: toml::Table) -> Result<Self, GroupsConfigError> {
        let table: GroupsTable = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| GroupsConfigError::Parse(toml_error_line(&e)))?;
        for (group, service) in &table.services {
            let why = if group.trim().is_empty() {
                "the group name is empty"
            } else if service.trim().is_empty() {
                "the service name is empty"
            } else {
                continue;
            };
            return Err(GroupsConfigError::Service {
                group: group.clone(),
                service: service.clone(),
                why,
            });
        }
        Ok(Self {
            poll_every: table.poll_every.unwrap_or(DEFAULT_POLL_EVERY),
            services: table.services,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_polls_every_five_seconds_with_no_declared_services() {
        assert_eq!(
            GroupsConfig::from_toml("").unwrap(),
            GroupsConfig::default()
        );
        assert_eq!(GroupsConfig::default().poll_every, Duration::from_secs(5));
    }

    #[test]
    fn the_table_gives_the_interval_and_the_group_services() {
        let config = GroupsConfig::from_toml(
            r#"
            poll_every = "2s"
            [services]
            "bank-consumers" = "bank"
            "#,
        )
        .unwrap();
        assert_eq!(config.poll_every, Duration::from_secs(2));
        assert_eq!(
            config.services.get("bank-consumers").map(String::as_str),
            Some("bank")
        );
    }

    #[test]
    fn zero_turns_polling_off() {
        let config = GroupsConfig::from_toml("poll_every = \"0s\"").unwrap();
        assert_eq!(config.poll_every, Duration::ZERO);
    }

    #[test]
    fn an_unusable_value_is_one_line_naming_it() {
        for (text, says) in [
            ("poll_every = \"soon\"", "[consumer_groups]"),
            ("colour = 1", "unknown field `colour`"),
            (
                "[services]\n\"bank\" = \"\"",
                "[consumer_groups.services] `bank` = ``: the service name is empty",
            ),
        ] {
            let error = GroupsConfig::from_toml(text).unwrap_err().to_string();
            assert!(error.contains(says), "`{text}` gave `{error}`");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}
