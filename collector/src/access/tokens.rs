//! Static API tokens (`--auth tokens --auth-tokens FILE`): each a name, a role, optional topic
//! patterns and the SHA-256 of the token, never the token itself.
//!
//! ```toml
//! [[tokens]]
//! name = "grafana"
//! sha256 = "3f1c…"              # choreoscope token new --name grafana --role viewer
//! role = "viewer"
//! topics = ["orders.*"]         # optional: events of other topics are opaque
//! ```
//!
//! Tokens are 256 random bits, so one SHA-256 (no salt, no stretching) is as strong as the
//! token: there is no dictionary to try.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::role::{Principal, Role};
use crate::query::visibility::TopicPatterns;

/// The prefix of every token this collector makes (lets secret scanners recognise them).
pub const TOKEN_PREFIX: &str = "chs_";

/// Why the tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("tokens file `{path}`: {problem}")]
pub struct TokensError {
    /// The file.
    pub path: String,
    /// What is wrong.
    pub problem: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    sha256: String,
    role: Role,
    #[serde(default)]
    topics: Option<Vec<String>>,
}

/// The tokens the collector accepts, by their hash.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Principal>,
}

impl Tokens {
    /// Reads and checks the tokens file.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let problem = |problem: String| TokensError {
            path: path.display().to_string(),
            problem,
        };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        Self::from_toml(&text).map_err(problem)
    }

    /// Reads the file's text.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: TokensFile =
            toml::from_str(text).map_err(|e| crate::rules::toml_error_line(&e))?;
        let mut by_hash = HashMap::new();
        for entry in file.tokens {
            let hash = parse_hash(&entry.sha256)
                .ok_or_else(|| format!("token `{}`: sha256 must be 64 hex digits", entry.name))?;
            let principal = Principal {
                name: entry.name.clone(),
                role: entry.role,
                topics: entry.topics.map(TopicPatterns::new),
                via: "token",
            };
            if by_hash.insert(hash, principal).is_some() {
                return Err(format!(
                    "token `{}`: the same hash is listed twice",
                    entry.name
                ));
            }
        }
        if by_hash.is_empty() {
            return Err("no [[tokens]] listed: nobody could log in".to_owned());
        }
        Ok(Self { by_hash })
    }

    /// The principal of `token`, when it is one of ours.
    pub fn find(&self, token: &str) -> Option<&Principal> {
        self.by_hash.get(&digest(token))
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hash(hex_digits: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_digits.trim()).ok()?;
    bytes.try_into().ok()
}

/// The SHA-256 of a token, as the tokens file lists it.
pub fn token_hash(token: &str) -> String {
    hex::encode(digest(token))
}

/// A new random token: [`TOKEN_PREFIX`] and 256 random bits from the operating system's
/// generator, base64url.
pub fn new_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The `[[tokens]]` entry for a new token, to paste into the tokens file.
pub fn entry(name: &str, token: &str, role: Role, topics: &[String]) -> String {
    let mut text = format!(
        "[[tokens]]\nname = {}\nsha256 = \"{}\"\nrole = \"{}\"\n",
        toml::Value::String(name.to_owned()),
        token_hash(token),
        role
    );
    if !topics.is_empty() {
        let list: Vec<String> = topics
            .iter()
            .map(|t| toml::Value::String(t.clone()).to_string())
            .collect();
        text.push_str(&format!("topics = [{}]\n", list.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_token_is_found_by_the_entry_made_for_it() {
        let token = new_token();
        assert!(
            token.starts_with(TOKEN_PREFIX) && token.len() > 40,
            "{token}"
        );
        let tokens =
            Tokens::from_toml(&entry("ci", &token, Role::Reader, &["orders.*".to_owned()]))
                .unwrap();
        let found = tokens.find(&token).unwrap();
        assert_eq!((found.name.as_str(), found.role), ("ci", Role::Reader));
        assert!(found.sight().sees_topic("orders.created"));
        assert!(!found.sight().sees_topic("payments"));
        assert!(tokens.find("chs_other").is_none());
    }

    #[test]
    fn two_new_tokens_differ() {
        assert_ne!(new_token(), new_token());
    }

    #[test]
    fn the_file_holds_no_token_only_its_hash() {
        let token = new_token();
        let text = entry("ci", &token, Role::Viewer, &[]);
        assert!(!text.contains(&token));
        assert!(text.contains(&token_hash(&token)));
    }

    #[test]
    fn a_bad_hash_or_role_is_refused_in_one_line() {
        let e =
            Tokens::from_toml("[[tokens]]\nname = \"x\"\nsha256 = \"abc\"\nrole = \"viewer\"\n")
                .unwrap_err();
        assert!(e.contains("64 hex digits"), "{e}");
        let e = Tokens::from_toml(&format!(
            "[[tokens]]\nname = \"x\"\nsha256 = \"{}\"\nrole = \"owner\"\n",
            "a".repeat(64)
        ))
        .unwrap_err();
        assert!(e.contains("owner") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(Tokens::from_toml("").unwrap_err().contains("nobody"));
    }
}
