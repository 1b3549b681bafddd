//! JSON pointers (RFC 6901) with one extension: a `*` segment stands for every element of an
//! array (or every member of an object), so `/items/*/cardToken` reaches each item's token.

use serde_json::Value;

/// A parsed pointer: its segments, a `*` segment a wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Name(String),
    Every,
}

impl Pointer {
    /// Parses `text`: empty (the whole document) or `/`-separated segments with `~0`/`~1`
    /// escapes; `*` alone is a wildcard.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err(
                "the empty pointer names the whole payload: use `payload = \"none\"`".into(),
            );
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "`{text}` is not a JSON pointer (it starts with `/`)"
            ));
        };
        let segments = rest
            .split('/')
            .map(|s| match s {
                "*" => Segment::Every,
                s => Segment::Name(s.replace("~1", "/").replace("~0", "~")),
            })
            .collect();
        Ok(Self {
            text: text.to_owned(),
            segments,
        })
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Calls `act` on the parent of every value the pointer reaches, with the member name or
    /// index of the value; returns how many it reached.
    pub fn visit(&self, doc: &mut Value, act: &mut dyn FnMut(&mut Value, &Key)) -> usize {
        let Some((last, path)) = self.segments.split_last() else {
            return 0;
        };
        let mut reached = 0;
        walk(doc, path, &mut |parent| {
            for key in keys(parent, last) {
                act(parent, &key);
                reached += 1;
            }
        });
        reached
    }
}

/// Where a reached value sits in its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// An object member.
    Member(String),
    /// An array element.
    Index(usize),
}

/// The keys of `parent` that `segment` names (and that exist).
fn keys(parent: &Value, segment: &Segment) -> Vec<Key> {
    match (parent, segment) {
        (Value::Object(map), Segment::Name(name)) if map.contains_key(name) => {
            vec![Key::Member(name.clone())]
        }
        (Value::Object(map), Segment::Every) => map.keys().cloned().map(Key::Member).collect(),
        (Value::Array(items), Segment::Name(name)) => match name.parse::<usize>() {
            Ok(i) if i < items.len() => vec![Key::Index(i)],
            _ => Vec::new(),
        },
        (Value::Array(items), Segment::Every) => (0..items.len()).map(Key::Index).collect(),
        _ => Vec::new(),
    }
}

/// Calls `at` on every value `path` reaches from `value`.
fn walk(value: &mut Value, path: &[Segment], at: &mut dyn FnMut(&mut Value)) {
    let Some((first, rest)) = path.split_first() else {
        at(value);
        return;
    };
    match (value, first) {
        (Value::Object(map), Segment::Name(name)) => {
            if let Some(v) = map.get_mut(name) {
                walk(v, rest, at);
            }
        }
        (Value::Object(map), Segment::Every) => {
            for v in map.values_mut() {
                walk(v, rest, at);
            }
        }
        (Value::Array(items), Segment::Name(name)) => {
            if let Some(v) = name.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                walk(v, rest, at);
            }
        }
        (Value::Array(items), Segment::Every) => {
            for v in items {
                walk(v, rest, at);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reached(pointer: &str, mut doc: Value) -> Vec<Key> {
        let mut found = Vec::new();
        Pointer::parse(pointer)
            .unwrap()
            .visit(&mut doc, &mut |_, k| found.push(k.clone()));
        found
    }

    #[test]
    fn a_plain_pointer_reaches_one_member() {
        let doc = json!({"customer": {"email": "a@b.c", "id": 1}});
        assert_eq!(
            reached("/customer/email", doc),
            vec![Key::Member("email".into())]
        );
    }

    #[test]
    fn a_wildcard_reaches_every_array_element() {
        let doc = json!({"items": [{"card": 1}, {"sku": 2}, {"card": 3}]});
        assert_eq!(reached("/items/*/card", doc).len(), 2);
        let doc = json!({"tokens": ["a", "b"]});
        assert_eq!(
            reached("/tokens/*", doc),
            vec![Key::Index(0), Key::Index(1)]
        );
    }

    #[test]
    fn escapes_and_indices_follow_rfc_6901() {
        let doc = json!({"a/b": {"m~n": [0, {"x": 1}]}});
        assert_eq!(
            reached("/a~1b/m~0n/1/x", doc),
            vec![Key::Member("x".into())]
        );
    }

    #[test]
    fn a_pointer_to_nothing_reaches_nothing() {
        let doc = json!({"customer": "plain"});
        assert!(reached("/customer/email", doc.clone()).is_empty());
        assert!(reached("/missing/*", doc).is_empty());
    }

    #[test]
    fn a_pointer_must_start_with_a_slash() {
        assert!(Pointer::parse("customer/email")
            .unwrap_err()
            .contains("is not a JSON pointer"));
        assert!(Pointer::parse("").is_err());
    }
}
