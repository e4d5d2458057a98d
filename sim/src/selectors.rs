//! Label and field selectors.
//!
//! Syntax from the Kubernetes docs "Labels and Selectors" (equality-based `=`, `==`, `!=`;
//! set-based `in`, `notin`, `key`, `!key`) and "Field Selectors" (`=`, `==`, `!=` on
//! `metadata.name`, `metadata.namespace` and a few type-specific fields).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::errors::ApiError;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key in (values)` (also `key=value`).
    In(String, Vec<String>),
    /// `key notin (values)` (also `key!=value`; matches when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`: the label exists.
    Exists(String),
    /// `!key`: the label does not exist.
    DoesNotExist(String),
}

/// A parsed label selector: all requirements must hold. Empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the string form used in `?labelSelector=`.
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a malformed selector.
    pub fn parse(s: &str) -> Result<LabelSelector, ApiError> {
        let mut reqs = Vec::new();
        for part in split_top_level(s) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(LabelSelector(reqs))
    }

    /// Builds a selector from a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`).
    pub fn from_object(sel: &Value) -> LabelSelector {
        let mut reqs = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                reqs.push(Requirement::In(
                    k.clone(),
                    vec![v.as_str().unwrap_or_default().to_string()],
                ));
            }
        }
        for e in sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e["key"].as_str().unwrap_or_default().to_string();
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
            reqs.push(match e["operator"].as_str().unwrap_or_default() {
                "In" => Requirement::In(key, values),
                "NotIn" => Requirement::NotIn(key, values),
                "Exists" => Requirement::Exists(key),
                _ => Requirement::DoesNotExist(key),
            });
        }
        LabelSelector(reqs)
    }

    /// Builds an equality selector from a map (a Service's `spec.selector`).
    pub fn from_map(m: &Value) -> LabelSelector {
        LabelSelector(
            m.as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    Requirement::In(k.clone(), vec![v.as_str().unwrap_or_default().to_string()])
                })
                .collect(),
        )
    }

    /// Its `key=value` requirements (`In` with one value), as (key, value).
    pub fn equalities(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().filter_map(|r| match r {
            Requirement::In(k, vs) => match vs.as_slice() {
                [v] => Some((k.as_str(), v.as_str())),
                _ => None,
            },
            _ => None,
        })
    }

    /// Whether the selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Whether an object's `metadata.labels` satisfy the selector. Reads the labels in place
    /// (no copy): selectors run over every object of a list, watch and controller pass.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches_labels(
            obj.get("metadata")
                .and_then(|m| m.get("labels"))
                .unwrap_or(&Value::Null),
        )
    }

    /// Whether a `metadata.labels` value (a JSON object; anything else has no labels)
    /// satisfies the selector.
    pub fn matches_labels(&self, labels: &Value) -> bool {
        let labels = labels.as_object();
        self.matches_with(|k| {
            labels
                .and_then(|l| l.get(k))
                .map(|v| v.as_str().unwrap_or_default())
        })
    }

    /// Whether every requirement holds, given the value of each label key (`None`: absent).
    fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::In(k, vs) => label(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::DoesNotExist(k) => label(k).is_none(),
        })
    }
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

fn parse_requirement(part: &str) -> Result<Requirement, ApiError> {
    let bad = || ApiError::BadRequest(format!("unable to parse requirement: {part}"));
    if let Some(key) = part.strip_prefix('!') {
        return Ok(Requirement::DoesNotExist(key.trim().to_string()));
    }
    for (op, negate) in [(" notin ", true), (" in ", false)] {
        if let Some((k, rest)) = part.split_once(op) {
            let rest = rest.trim();
            let inner = rest
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(bad)?;
            let values = inner
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            let key = k.trim().to_string();
            return Ok(if negate {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            });
        }
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotIn(k.trim().into(), vec![v.trim().into()]));
    }
    if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
        return Ok(Requirement::In(k.trim().into(), vec![v.trim().into()]));
    }
    if part.contains(['(', ')', ' ']) {
        return Err(bad());
    }
    Ok(Requirement::Exists(part.to_string()))
}

/// A parsed field selector: `path=value` / `path!=value` terms, all must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `?fieldSelector=`. Any dotted path is accepted (the real server restricts them
    /// per type; `metadata.name` and `metadata.namespace` work everywhere).
    ///
    /// # Errors
    /// [`ApiError::BadRequest`] for a term without an operator.
    pub fn parse(s: &str) -> Result<FieldSelector, ApiError> {
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (k, true, v)
            } else {
                return Err(ApiError::BadRequest(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                )));
            };
            terms.push((k.trim().to_string(), eq, v.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether every term reads a field of `metadata` other than `managedFields` (true for no
    /// terms): such a selector can be matched on a compact past state's metadata
    /// ([`crate::store::Revision::meta`]).
    pub fn reads_only_metadata(&self) -> bool {
        self.0.iter().all(|(path, _, _)| {
            path.strip_prefix("metadata.")
                .is_some_and(|rest| !rest.starts_with("managedFields"))
        })
    }

    /// Whether the object satisfies every term. Missing fields compare as `""`.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let mut cur = obj;
            for seg in path.split('.') {
                cur = cur.get(seg).unwrap_or(&Value::Null);
            }
            let got = match cur {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (got == *want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_and_set_based() {
        let s = LabelSelector::parse("app=fe,tier in (a, b),!legacy,env!=prod").unwrap();
        assert!(s.matches(&labels(&[("app", "fe"), ("tier", "b")])));
        assert!(!s.matches(&labels(&[("app", "fe"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "fe"), ("tier", "a"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "fe"), ("tier", "a"), ("env", "prod")])));
        let s = LabelSelector::parse("x notin (1),y").unwrap();
        assert!(s.matches(&labels(&[("y", "")])));
        assert!(!s.matches(&labels(&[("x", "1"), ("y", "")])));
    }

    #[test]
    fn object_selector() {
        let s = LabelSelector::from_object(
            &json!({"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}),
        );
        assert!(s.matches(&labels(&[("a", "1"), ("b", "x")])));
        assert!(!s.matches(&labels(&[("a", "1")])));
    }

    #[test]
    fn object_labels_are_read_in_place() {
        let s = LabelSelector::parse("app=fe,!legacy").unwrap();
        assert!(s.matches_object(&json!({"metadata": {"labels": {"app": "fe"}}})));
        assert!(!s.matches_object(&json!({"metadata": {"labels": {"app": "be"}}})));
        assert!(!s.matches_object(&json!({"metadata": {"labels": {"app": "fe", "legacy": "1"}}})));
        assert!(!s.matches_object(&json!({"metadata": {}})));
        assert!(
            LabelSelector::parse("!app")
                .unwrap()
                .matches_object(&json!({}))
        );
    }

    #[test]
    fn field_selector() {
        let f =
            FieldSelector::parse("metadata.name=web-0,metadata.namespace!=kube-system").unwrap();
        assert!(f.matches(&json!({"metadata": {"name": "web-0", "namespace": "default"}})));
        assert!(!f.matches(&json!({"metadata": {"name": "web-1", "namespace": "default"}})));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
