//! JSON pointer lookups without allocation.
//!
//! `serde_json::Value::pointer` unescapes every token into a new `String` (RFC 6901 `~1` and
//! `~0`), which made it the simulator's hottest function at a thousand clusters: controllers
//! read a handful of pointers from every object on every pass.

use serde_json::Value;

/// [`Value::pointer`] with the same results, borrowing the tokens of `pointer` unless one
/// contains an escape (`~`).
pub trait JsonPath {
    /// The value at the RFC 6901 pointer, e.g. `/metadata/labels`; `""` is the value itself;
    /// `None` when a token does not resolve.
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl JsonPath for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let tokens = pointer.strip_prefix('/')?;
        if tokens.contains('~') {
            return self.pointer(pointer);
        }
        tokens
            .split('/')
            .try_fold(self, |value, token| match value {
                Value::Object(map) => map.get(token),
                Value::Array(items) => index(token).and_then(|i| items.get(i)),
                _ => None,
            })
    }
}

/// An array index token as RFC 6901 reads it: decimal, no sign, no leading zero.
fn index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn agrees_with_serde_json_pointer() {
        let v = json!({
            "metadata": {"labels": {"app": "fe"}, "annotations": {"a/b": "1", "c~d": "2"}},
            "items": [{"name": "x"}, {"name": "y"}],
            "": {"empty": true},
        });
        for p in [
            "",
            "/",
            "/metadata",
            "/metadata/labels/app",
            "/metadata/labels/none",
            "/metadata/annotations/a~1b",
            "/metadata/annotations/c~0d",
            "/items/1/name",
            "/items/01/name",
            "/items/+1",
            "/items/2",
            "/items/x",
            "/metadata/labels/app/deeper",
            "metadata",
            "//empty",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p}");
        }
    }
}
