//! Reading rules from the config file: per-topic JSON-pointer business-key rules
//! (`orders.* : /orderId -> order.id`) and per-topic alias profiles.

use choreoscope_sdk::AliasTable;
use regex::Regex;
use serde::Deserialize;

use crate::dead_letter::{DeadLetterRules, DeadLetterRulesError};

/// A malformed rule in the config file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// The rule is not of the form `TOPIC_REGEX : /json/pointer -> key.name`.
    #[error("key rule `{0}` is not of the form `TOPIC_REGEX : /json/pointer -> key.name`")]
    Syntax(String),
    /// The topic pattern is not a valid regular expression.
    #[error("topic pattern `{pattern}` is not a valid regular expression: {source}")]
    Regex {
        /// The pattern.
        pattern: String,
        /// The regex error.
        #[source]
        source: regex::Error,
    },
    /// The alias profile is unknown.
    #[error("unknown alias profile `{0}`; known: {known}", known = AliasTable::PROFILES.join(", "))]
    UnknownProfile(String),
    /// The config file's reading rules do not parse (its path is added by the caller).
    #[error("{0}")]
    Invalid(String),
    /// A `dead_letter_topics` pattern cannot be used.
    #[error(transparent)]
    DeadLetterTopic(#[from] DeadLetterRulesError),
    /// The config file could not be read or parsed.
    #[error("config file `{path}`: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// A topic pattern: a regular expression that must match the whole topic name.
#[derive(Debug, Clone)]
pub struct TopicPattern(Regex);

impl TopicPattern {
    /// Compiles `pattern`, anchored at both ends.
    pub fn new(pattern: &str) -> Result<Self, RuleError> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(Self)
            .map_err(|source| RuleError::Regex {
                pattern: pattern.to_owned(),
                source,
            })
    }

    /// Whether `topic` matches.
    pub fn matches(&self, topic: &str) -> bool {
        self.0.is_match(topic)
    }
}

/// `orders.* : /orderId -> order.id`: on topics matching `orders.*`, the JSON payload's value at
/// `/orderId` is the business key `order.id`.
#[derive(Debug, Clone)]
pub struct KeyRule {
    /// Topics the rule applies to.
    pub topics: TopicPattern,
    /// RFC 6901 JSON pointer into the payload.
    pub pointer: String,
    /// The key name to store.
    pub key: String,
}

impl std::str::FromStr for KeyRule {
    type Err = RuleError;

    fn from_str(rule: &str) -> Result<Self, Self::Err> {
        let syntax = || RuleError::Syntax(rule.to_owned());
        let (topics, rest) = rule
            .rsplit_once(" : ")
            .or_else(|| rule.rsplit_once(':'))
            .ok_or_else(syntax)?;
        let (pointer, key) = rest.split_once("->").ok_or_else(syntax)?;
        let (topics, pointer, key) = (topics.trim(), pointer.trim(), key.trim());
        if topics.is_empty()
            || !(pointer.is_empty() || pointer.starts_with('/'))
            || key.is_empty()
            || key.contains(char::is_whitespace)
        {
            return Err(syntax());
        }
        Ok(Self {
            topics: TopicPattern::new(topics)?,
            pointer: pointer.to_owned(),
            key: key.to_owned(),
        })
    }
}

/// The alias table to use for topics matching a pattern.
#[derive(Debug, Clone)]
pub struct TopicAliases {
    /// Topics it applies to.
    pub topics: TopicPattern,
    /// The table.
    pub table: AliasTable,
}

/// The config file's reading rules (`--config FILE`, TOML; its `[health]` table is flow health's,
/// see `crate::config`).
///
/// ```toml
/// aliases = "generic"                       # default alias profile
/// key_rules = ["orders.* : /orderId -> order.id", "members : /member/id -> member.id"]
///
/// [[topic_aliases]]
/// topics = "legacy-.*"
/// profile = "nservicebus"
///
/// dead_letter_topics = ['\.DLT$', '-dlq$']   # replaces the default dead-letter name patterns
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Default alias profile (see `AliasTable::PROFILES`); `generic` when absent.
    pub aliases: Option<String>,
    /// Extra aliases merged after the default profile.
    pub extra_aliases: Option<AliasTable>,
    /// Business-key rules.
    #[serde(default)]
    pub key_rules: Vec<String>,
    /// Per-topic alias profiles; the first matching entry wins.
    #[serde(default)]
    pub topic_aliases: Vec<TopicAliasesEntry>,
    /// Dead-letter topic name patterns (regular expressions), replacing the defaults
    /// (`crate::dead_letter::DEFAULT_PATTERNS`).
    pub dead_letter_topics: Option<Vec<String>>,
}

/// One `[[topic_aliases]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicAliasesEntry {
    /// Topic regular expression.
    pub topics: String,
    /// Profile name.
    pub profile: String,
}

/// The compiled reading rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// Alias table for topics no `topic_aliases` entry matches.
    pub default_aliases: AliasTable,
    /// Per-topic alias tables.
    pub topic_aliases: Vec<TopicAliases>,
    /// Business-key rules.
    pub key_rules: Vec<KeyRule>,
    /// Which topics are dead-letter topics by name (for copies that carry only the original's
    /// `ce_id`).
    pub dead_letters: DeadLetterRules,
}

fn profile(name: &str) -> Result<AliasTable, RuleError> {
    AliasTable::profile(name).ok_or_else(|| RuleError::UnknownProfile(name.to_owned()))
}

impl Rules {
    /// Compiles a parsed config file.
    pub fn from_config(config: &ConfigFile) -> Result<Self, RuleError> {
        let mut default_aliases = profile(config.aliases.as_deref().unwrap_or("generic"))?;
        if let Some(extra) = &config.extra_aliases {
            default_aliases = default_aliases.merged(extra);
        }
        Ok(Self {
            default_aliases,
            topic_aliases: config
                .topic_aliases
                .iter()
                .map(|e| {
                    Ok(TopicAliases {
                        topics: TopicPattern::new(&e.topics)?,
                        table: profile(&e.profile)?,
                    })
                })
                .collect::<Result<_, RuleError>>()?,
            key_rules: config
                .key_rules
                .iter()
                .map(|r| r.parse())
                .collect::<Result<_, _>>()?,
            dead_letters: match &config.dead_letter_topics {
                Some(patterns) => DeadLetterRules::new(patterns)?,
                None => DeadLetterRules::default(),
            },
        })
    }

    /// Compiles the reading rules of a config file already parsed as TOML (its top-level keys).
    pub fn from_table(table: toml::Table) -> Result<Self, RuleError> {
        let config: ConfigFile = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| RuleError::Invalid(toml_error_line(&e)))?;
        Self::from_config(&config)
    }

    /// Reads and compiles a TOML config file.
    pub fn load(path: &std::path::Path) -> Result<Self, RuleError> {
        let file = |reason: String| RuleError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file(e.to_string()))?;
        let config: ConfigFile = toml::from_str(&text).map_err(|e| file(e.to_string()))?;
        Self::from_config(&config)
    }

    /// The alias table for `topic`.
    pub fn aliases_for(&self, topic: &str) -> &AliasTable {
        self.topic_aliases
            .iter()
            .find(|t| t.topics.matches(topic))
            .map(|t| &t.table)
            .unwrap_or(&self.default_aliases)
    }
}

/// A TOML error on one line: TOML's own message quotes the source over several lines, and a user
/// sees one (the config file's readers all report through this).
pub(crate) fn toml_error_line(error: &toml::de::Error) -> String {
    error
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rule_parses_the_documented_syntax() {
        let rule: KeyRule = "orders.* : /orderId -> order.id".parse().unwrap();
        assert!(rule.topics.matches("orders.v1") && !rule.topics.matches("x-orders.v1"));
        assert_eq!(
            (rule.pointer.as_str(), rule.key.as_str()),
            ("/orderId", "order.id")
        );
        let compact: KeyRule = "members:/member/id->member.id".parse().unwrap();
        assert_eq!(compact.pointer, "/member/id");
    }

    #[test]
    fn malformed_rules_say_what_is_wrong() {
        assert!(matches!(
            "orders /id order.id".parse::<KeyRule>(),
            Err(RuleError::Syntax(_))
        ));
        assert!(matches!(
            "orders : id -> order.id".parse::<KeyRule>(),
            Err(RuleError::Syntax(_))
        ));
        assert!(matches!(
            "(orders : /id -> order.id".parse::<KeyRule>(),
            Err(RuleError::Regex { .. })
        ));
    }

    #[test]
    fn config_file_selects_aliases_per_topic() {
        let config: ConfigFile = toml::from_str(
            r#"
            aliases = "generic"
            key_rules = ["orders : /id -> order.id"]
            [[topic_aliases]]
            topics = "legacy-.*"
            profile = "nservicebus"
            "#,
        )
        .unwrap();
        let rules = Rules::from_config(&config).unwrap();
        assert_eq!(
            rules.aliases_for("legacy-billing").event_id,
            vec!["NServiceBus.MessageId"]
        );
        assert_eq!(rules.aliases_for("orders"), &AliasTable::default());
        let bad: ConfigFile = toml::from_str("aliases = \"kafka-streams\"").unwrap();
        assert!(matches!(
            Rules::from_config(&bad),
            Err(RuleError::UnknownProfile(_))
        ));
        assert!(toml::from_str::<ConfigFile>("unknown = 1").is_err());
    }
}
