//! The config file's `[access]` table: which role a user signed in through a proxy or OpenID
//! Connect gets, from their name or their groups.
//!
//! ```toml
//! [access]
//! default_role = "viewer"        # for a signed-in user no grant names; absent: refused (403)
//!
//! [[access.grants]]
//! group = "platform"
//! role = "admin"
//!
//! [[access.grants]]
//! group = "payments-team"
//! role = "reader"
//! topics = ["payments.*", "orders.*"]
//!
//! [[access.grants]]
//! user = "auditor@example.com"
//! role = "viewer"
//! ```
//!
//! A user several grants name gets the highest of their roles and the union of their topics
//! (every topic when one of them lists none).

use serde::Deserialize;

use super::role::{Principal, Role};
use crate::query::visibility::TopicPatterns;

/// One grant: a group or a user, the role they get and optional topic patterns.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// A group the identity provider or the proxy names the user in.
    #[serde(default)]
    pub group: Option<String>,
    /// A user name (the proxy's user header, or the token's `preferred_username`, `email` or
    /// `sub`).
    #[serde(default)]
    pub user: Option<String>,
    /// The role granted.
    pub role: Role,
    /// Only these topics' events in full; absent: every topic.
    #[serde(default)]
    pub topics: Option<Vec<String>>,
}

/// The `[access]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// The role of a signed-in user no grant names (`None`: refused).
    #[serde(default)]
    pub default_role: Option<Role>,
    /// The grants, in any order.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl Grants {
    /// Checks that every grant names a group or a user, not both.
    pub fn check(&self) -> Result<(), String> {
        for (i, grant) in self.grants.iter().enumerate() {
            if grant.group.is_some() == grant.user.is_some() {
                return Err(format!(
                    "[[access.grants]] number {}: name either a `group` or a `user`",
                    i + 1
                ));
            }
        }
        Ok(())
    }

    /// The principal of a user named `name` in `groups`, or `None` when nothing grants them a
    /// role.
    pub fn principal(&self, name: &str, groups: &[String], via: &'static str) -> Option<Principal> {
        let matching: Vec<&Grant> = self
            .grants
            .iter()
            .filter(|g| {
                g.user.as_deref() == Some(name)
                    || g.group.as_ref().is_some_and(|group| groups.contains(group))
            })
            .collect();
        let Some(role) = matching.iter().map(|g| g.role).max() else {
            return self.default_role.map(|role| Principal {
                name: name.to_owned(),
                role,
                topics: None,
                via,
            });
        };
        let topics = if matching.iter().any(|g| g.topics.is_none()) {
            None
        } else {
            Some(TopicPatterns::new(
                matching
                    .iter()
                    .flat_map(|g| g.topics.iter().flatten().cloned()),
            ))
        };
        Some(Principal {
            name: name.to_owned(),
            role,
            topics,
            via,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        toml::from_str(
            r#"
            [[grants]]
            group = "platform"
            role = "admin"
            [[grants]]
            group = "payments"
            role = "reader"
            topics = ["payments.*"]
            [[grants]]
            group = "orders"
            role = "viewer"
            topics = ["orders.*"]
            "#,
        )
        .unwrap()
    }

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_group_grants_its_role_and_topics() {
        let p = grants()
            .principal("ann", &groups(&["payments"]), "proxy")
            .unwrap();
        assert_eq!(p.role, Role::Reader);
        assert!(p.sight().sees_topic("payments.captured"));
        assert!(!p.sight().sees_topic("orders.created"));
    }

    #[test]
    fn several_groups_give_the_highest_role_and_the_union_of_topics() {
        let p = grants()
            .principal("ann", &groups(&["orders", "payments"]), "proxy")
            .unwrap();
        assert_eq!(p.role, Role::Reader);
        assert!(p.sight().sees_topic("orders.created"));
        assert!(p.sight().sees_topic("payments.captured"));
        assert!(!p.sight().sees_topic("shipping"));
    }

    #[test]
    fn nobody_named_by_a_grant_gets_the_default_role_or_nothing() {
        assert_eq!(
            grants().principal("bob", &groups(&["sales"]), "proxy"),
            None
        );
        let with_default = Grants {
            default_role: Some(Role::Viewer),
            ..grants()
        };
        let p = with_default
            .principal("bob", &groups(&["sales"]), "proxy")
            .unwrap();
        assert_eq!((p.role, p.topics), (Role::Viewer, None));
    }

    #[test]
    fn a_grant_names_a_group_or_a_user() {
        let g: Grants = toml::from_str("[[grants]]\nrole = \"viewer\"\n").unwrap();
        assert!(g
            .check()
            .unwrap_err()
            .contains("either a `group` or a `user`"));
    }
}
