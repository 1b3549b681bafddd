//! The audit log (`--audit-log FILE`, or `-` for stdout): one JSON line per API request, saying
//! who asked for which event, key, flow or payload, when, from where, and what was answered.
//!
//! ```json
//! {"time":"2026-12-07T08:00:00.123456Z","who":"ann","role":"reader","via":"proxy",
//!  "from":"10.0.0.7","forwarded_for":"203.0.113.9","method":"GET",
//!  "path":"/api/v1/events/e-1","query":null,"resource":"event","id":"e-1","status":200}
//! ```
//!
//! Lines are written before the answer leaves, each in one `write` of a line-buffered file
//! opened for appending, so a line is never split or lost to a crash of the collector.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

/// Where audit lines go.
#[derive(Clone)]
pub struct AuditLog {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    target: String,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("target", &self.target)
            .finish()
    }
}

/// One audited request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    /// When it was answered (RFC 3339, µs).
    pub time: String,
    /// Who asked (a token's, a user's name; `anonymous` without login).
    pub who: String,
    /// Their role (`null` when refused before one was known).
    pub role: Option<&'static str>,
    /// How they were authenticated.
    pub via: Option<&'static str>,
    /// The address the request came from.
    pub from: Option<String>,
    /// `X-Forwarded-For`, as a proxy in front said it.
    pub forwarded_for: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The path asked for.
    pub path: String,
    /// The query string.
    pub query: Option<String>,
    /// What kind of thing was asked for: `event`, `lineage`, `key`, `trace`, `correlation`,
    /// `search`, `flows`, `topology`, … (the path's segment after `/api/v1/`).
    pub resource: String,
    /// Which one: the event id, `name=value` of a key, the trace or correlation id.
    pub id: Option<String>,
    /// The answer's status.
    pub status: u16,
}

impl AuditLog {
    /// Audit lines to `path` (appended), or to stdout for `-`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let (out, target): (Box<dyn Write + Send>, String) = if path == Path::new("-") {
            (Box::new(std::io::stdout()), "stdout".to_owned())
        } else {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            (Box::new(file), path.display().to_string())
        };
        Ok(Self {
            out: Arc::new(Mutex::new(out)),
            target,
        })
    }

    /// Where the lines go, for the start-up log.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Writes one record as one line.
    pub fn write(&self, record: &AuditRecord) {
        let mut line = match serde_json::to_vec(record) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!(error = %e, "could not encode an audit record");
                return;
            }
        };
        line.push(b'\n');
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(e) = out.write_all(&line).and_then(|()| out.flush()) {
            tracing::error!(error = %e, target = %self.target, "could not write the audit log");
        }
    }
}

/// The kind and id of what an API path asks for.
pub fn resource(path: &str) -> (String, Option<String>) {
    let rest = path.strip_prefix("/api/v1/").unwrap_or(path);
    let segments: Vec<String> = rest
        .split('/')
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    match segments.as_slice() {
        [kind, id, sub] if kind == "events" && sub == "lineage" => {
            ("lineage".to_owned(), Some(id.clone()))
        }
        [kind, id] if kind == "events" => ("event".to_owned(), Some(id.clone())),
        [kind, name, value] if kind == "keys" => {
            ("key".to_owned(), Some(format!("{name}={value}")))
        }
        [kind, id] if kind == "traces" => ("trace".to_owned(), Some(id.clone())),
        [kind, id] if kind == "correlations" => ("correlation".to_owned(), Some(id.clone())),
        [] => (String::new(), None),
        [kind, ..] => (kind.clone(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_resource_and_id() {
        assert_eq!(
            resource("/api/v1/events/e-1"),
            ("event".into(), Some("e-1".into()))
        );
        assert_eq!(
            resource("/api/v1/events/e%2F1/lineage"),
            ("lineage".into(), Some("e/1".into()))
        );
        assert_eq!(
            resource("/api/v1/keys/order.id/o-1001"),
            ("key".into(), Some("order.id=o-1001".into()))
        );
        assert_eq!(resource("/api/v1/search"), ("search".into(), None));
    }

    #[test]
    fn every_record_is_one_line_appended_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        let record = AuditRecord {
            time: "t".into(),
            who: "ann\nnot a second line".into(),
            role: Some("reader"),
            via: Some("token"),
            from: None,
            forwarded_for: None,
            method: "GET".into(),
            path: "/api/v1/events/e-1".into(),
            query: None,
            resource: "event".into(),
            id: Some("e-1".into()),
            status: 200,
        };
        log.write(&record);
        AuditLog::open(&path).unwrap().write(&record);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["who"], "ann\nnot a second line");
        assert_eq!(first["id"], "e-1");
    }
}
