//! Roles and the principal a request is made by.

use serde::Deserialize;

use crate::query::visibility::{Sight, TopicPatterns};

/// What a signed-in user may see (docs/security.md, "Roles").
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Graphs, types, services, times, statuses and business keys: no payloads, no header
    /// values, no record keys.
    Viewer,
    /// Also payloads, header values and record keys.
    Reader,
    /// Everything, in every topic whatever the patterns, and `/metrics` and `/healthz` when
    /// they are not public.
    Admin,
}

impl Role {
    /// The role's name, as in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Reader => "reader",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who makes a request, as the access guard established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user's or token's name (the audit log's `who`).
    pub name: String,
    /// What they may see.
    pub role: Role,
    /// Only these topics' events in full (`None`: every topic).
    pub topics: Option<TopicPatterns>,
    /// How they were authenticated: `none`, `token`, `proxy`, `oidc`.
    pub via: &'static str,
}

impl Principal {
    /// Nobody signed in, under `--auth none`: sees everything.
    pub fn anonymous() -> Self {
        Self {
            name: "anonymous".to_owned(),
            role: Role::Admin,
            topics: None,
            via: "none",
        }
    }

    /// What this principal may see of answers.
    pub fn sight(&self) -> Sight {
        Sight {
            payloads: self.role >= Role::Reader,
            topics: match self.role {
                Role::Admin => None,
                _ => self.topics.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, topics: Option<&[&str]>) -> Principal {
        Principal {
            name: "someone".into(),
            role,
            topics: topics.map(|t| TopicPatterns::new(t.iter().copied())),
            via: "token",
        }
    }

    #[test]
    fn a_viewer_sees_no_payloads_and_a_reader_does() {
        assert!(!principal(Role::Viewer, None).sight().payloads);
        assert!(principal(Role::Reader, None).sight().payloads);
        assert!(principal(Role::Admin, None).sight().payloads);
    }

    #[test]
    fn topic_patterns_bind_viewers_and_readers_but_not_admins() {
        let patterns = Some(&["orders.*"][..]);
        assert!(!principal(Role::Reader, patterns)
            .sight()
            .sees_topic("payments"));
        assert!(!principal(Role::Viewer, patterns)
            .sight()
            .sees_topic("payments"));
        assert!(principal(Role::Admin, patterns)
            .sight()
            .sees_topic("payments"));
    }
}
