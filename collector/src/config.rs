//! The config file (`--config FILE`, TOML): the reading rules at its top level (alias profiles,
//! key rules: [`crate::rules`]), flow health's `[health]` table (thresholds and declared
//! expectations: [`crate::health::config`]) and consumer-group positions' `[consumer_groups]`
//! table (poll interval, group services: [`crate::groups::config`]), and the cluster's TLS, SASL
//! and librdkafka properties in `[kafka]` ([`crate::cluster::SecuritySettings`]), and how long
//! events are kept in `[retention]` ([`crate::retention::RetentionTable`]). Both are checked when the file is read, and a value
//! that cannot be used stops the collector with one line naming the file and the value.

use std::path::Path;

use crate::access::Grants;
use crate::cluster::SecuritySettings;
use crate::groups::{GroupsConfig, GroupsConfigError};
use crate::health::{HealthConfig, HealthConfigError};
use crate::redact::{Redaction, RedactionError, RedactionTable};
use crate::retention::{RetentionError, RetentionTable};
use crate::rules::{toml_error_line, RuleError, Rules};

/// Why the config file cannot be used: the file, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("config file `{path}`: {problem}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// What is wrong (in the message, not a cause of its own: one line).
    pub problem: ConfigProblem,
}

/// What is wrong with a config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    /// It cannot be read, or is not TOML.
    #[error("{0}")]
    Unreadable(String),
    /// Its reading rules cannot be used.
    #[error("{0}")]
    Rules(RuleError),
    /// Its `[health]` table cannot be used.
    #[error("{0}")]
    Health(HealthConfigError),
    /// Its `[consumer_groups]` table cannot be used.
    #[error("{0}")]
    Groups(GroupsConfigError),
    /// Its `[kafka]` table cannot be used.
    #[error("[kafka]: {0}")]
    Kafka(String),
    /// Its `[redaction]` table cannot be used.
    #[error("{0}")]
    Redaction(RedactionError),
    /// Its `[access]` table cannot be used.
    #[error("[access]: {0}")]
    Access(String),
    /// Its `[retention]` table cannot be used.
    #[error("{0}")]
    Retention(RetentionError),
}

/// What the config file says.
#[derive(Debug, Clone, Default)]
pub struct CollectorConfig {
    /// How records are read: alias profiles and business-key rules.
    pub rules: Rules,
    /// Flow health's thresholds and declared expectations.
    pub health: HealthConfig,
    /// How consumer groups are polled and which service each consumes for.
    pub groups: GroupsConfig,
    /// TLS, SASL and librdkafka properties for the cluster (`[kafka]`), under the flags.
    pub kafka: SecuritySettings,
    /// What is redacted at ingest (`[redaction]`; credential headers when absent).
    pub redaction: Redaction,
    /// Which role a user signed in through a proxy gets (`[access]`).
    pub access: Grants,
    /// How long events are kept (`[retention]`), under `--retention` and `--max-store-size`.
    pub retention: RetentionTable,
}

impl CollectorConfig {
    /// Reads the file at `path`; `None` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        std::fs::read_to_string(path)
            .map_err(|e| ConfigProblem::Unreadable(e.to_string()))
            .and_then(|text| Self::from_toml(&text))
            .map_err(|problem| ConfigError {
                path: path.display().to_string(),
                problem,
            })
    }

    /// Reads the file's text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigProblem> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigProblem::Unreadable(toml_error_line(&e)))?;
        let health = match table.remove("health") {
            None => HealthConfig::default(),
            Some(toml::Value::Table(health)) => {
                HealthConfig::from_table(health).map_err(ConfigProblem::Health)?
            }
            Some(_) => {
                return Err(ConfigProblem::Health(HealthConfigError::Parse(
                    "`health` must be a table, `[health]`".into(),
                )))
            }
        };
        let groups = match table.remove("consumer_groups") {
            None => GroupsConfig::default(),
            Some(toml::Value::Table(groups)) => {
                GroupsConfig::from_table(groups).map_err(ConfigProblem::Groups)?
            }
            Some(_) => {
                return Err(ConfigProblem::Groups(GroupsConfigError::Parse(
                    "`consumer_groups` must be a table, `[consumer_groups]`".into(),
                )))
            }
        };
        let kafka = match table.remove("kafka") {
            None => SecuritySettings::default(),
            Some(toml::Value::Table(kafka)) => kafka
                .try_into()
                .map_err(|e: toml::de::Error| ConfigProblem::Kafka(e.message().to_owned()))?,
            Some(_) => {
                return Err(ConfigProblem::Kafka(
                    "`kafka` must be a table, `[kafka]`".into(),
                ))
            }
        };
        let access: Grants = match table.remove("access") {
            None => Grants::default(),
            Some(toml::Value::Table(access)) => access
                .try_into()
                .map_err(|e: toml::de::Error| ConfigProblem::Access(e.message().to_owned()))?,
            Some(_) => {
                return Err(ConfigProblem::Access(
                    "`access` must be a table, `[access]`".into(),
                ))
            }
        };
        access.check().map_err(ConfigProblem::Access)?;
        let redaction_table: RedactionTable = match table.remove("redaction") {
            None => RedactionTable::default(),
            Some(toml::Value::Table(redaction)) => {
                redaction.try_into().map_err(|e: toml::de::Error| {
                    ConfigProblem::Redaction(RedactionError(e.message().to_owned()))
                })?
            }
            Some(_) => {
                return Err(ConfigProblem::Redaction(RedactionError(
                    "`redaction` must be a table, `[redaction]`".into(),
                )))
            }
        };
        let redaction = Redaction::from_table(&redaction_table, |name| std::env::var(name).ok())
            .map_err(ConfigProblem::Redaction)?;
        let retention = match table.remove("retention") {
            None => RetentionTable::default(),
            Some(toml::Value::Table(retention)) => {
                RetentionTable::from_table(retention).map_err(ConfigProblem::Retention)?
            }
            Some(_) => {
                return Err(ConfigProblem::Retention(RetentionError::Table(
                    "`retention` must be a table, `[retention]`".into(),
                )))
            }
        };
        let rules = Rules::from_table(table).map_err(ConfigProblem::Rules)?;
        Ok(Self {
            rules,
            health,
            groups,
            kafka,
            redaction,
            access,
            retention,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_file_holds_the_reading_rules_and_the_health_table() {
        let config = CollectorConfig::from_toml(
            r#"
            key_rules = ["orders : /orderId -> order.id"]
            [health]
            min_samples = 5
            [[health.expect]]
            after = "payment/PaymentCreated"
            expect = "bank"
            within = "30s"
            "#,
        )
        .unwrap();
        assert_eq!(config.rules.key_rules.len(), 1);
        assert_eq!(config.health.min_samples, 5);
        assert_eq!(config.health.declared.len(), 1);
    }

    #[test]
    fn the_consumer_groups_table_gives_the_poll_interval_and_group_services() {
        let config = CollectorConfig::from_toml(
            r#"
            [consumer_groups]
            poll_every = "10s"
            [consumer_groups.services]
            "bank-consumers" = "bank"
            "#,
        )
        .unwrap();
        assert_eq!(config.groups.poll_every, std::time::Duration::from_secs(10));
        assert_eq!(config.groups.services["bank-consumers"], "bank");
    }

    #[test]
    fn a_file_without_a_health_table_takes_health_defaults() {
        let config = CollectorConfig::from_toml("aliases = \"generic\"").unwrap();
        assert_eq!(config.health, HealthConfig::default());
    }

    #[test]
    fn an_unusable_value_is_one_line_naming_the_file_and_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("choreoscope.toml");
        for (text, says) in [
            ("[health]\nmin_support = 2.0", "[health] min_support = 2"),
            ("colour = 1", "unknown field `colour`"),
            ("health = 3", "`health` must be a table"),
            ("[consumer_groups]\npoll_every = 5", "config file"),
            ("[health\n", "config file"),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = CollectorConfig::load(Some(&path)).unwrap_err().to_string();
            assert!(
                error.starts_with(&format!("config file `{}`: ", path.display())),
                "{error}"
            );
            assert!(error.contains(says), "`{text}` gave `{error}`");
            assert!(!error.contains('\n'), "one line: {error}");
        }
    }
}
