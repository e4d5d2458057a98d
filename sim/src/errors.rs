//! Errors of the simulated API server, rendered as the API server's `Status` object.
//!
//! Shape from the Kubernetes API concepts page ("Responses"): a failed request answers
//! `{"kind":"Status","apiVersion":"v1","status":"Failure","message":..,"reason":..,"details":..,"code":..}`
//! with the HTTP status code equal to `code`.

use serde_json::{Value, json};

/// One field-level cause of an error (`details.causes[]` of a `Status`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable cause type, e.g. `FieldValueRequired`, `FieldManagerConflict`.
    pub kind: String,
    /// Human-readable message.
    pub message: String,
    /// The field path, e.g. `spec.replicas`.
    pub field: String,
}

/// A request failure as the API server reports it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 404 NotFound: the named object (or resource type) does not exist.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// `plural.group` of the resource (just `plural` for the core group).
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 409 AlreadyExists: create of a name that is taken.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// `plural.group` of the resource.
        resource: String,
        /// The object's name.
        name: String,
    },
    /// 409 Conflict: a resourceVersion precondition failed, or a server-side apply conflict.
    #[error("{message}")]
    Conflict {
        /// `plural.group` of the resource.
        resource: String,
        /// The object's name.
        name: String,
        /// Full message.
        message: String,
        /// Field causes (apply conflicts).
        causes: Vec<Cause>,
    },
    /// 422 Invalid: the object fails validation.
    #[error("{kind}.{group} \"{name}\" is invalid: {}", causes.iter().map(|c| format!("{}: {}", c.field, c.message)).collect::<Vec<_>>().join(", "))]
    Invalid {
        /// Kind of the object.
        kind: String,
        /// API group of the object.
        group: String,
        /// Name of the object.
        name: String,
        /// What is wrong, per field.
        causes: Vec<Cause>,
    },
    /// 400 BadRequest: the body or the parameters cannot be understood.
    #[error("{0}")]
    BadRequest(String),
    /// 405 MethodNotAllowed: the verb is not supported on this path.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// 415 UnsupportedMediaType: a patch content type the server does not accept.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {0})"
    )]
    UnsupportedMediaType(String),
    /// 410 Gone / Expired: a watch or continue resourceVersion older than the retained window.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The resourceVersion the client asked for.
        requested: u64,
        /// The oldest resourceVersion still retained.
        oldest: u64,
    },
    /// 403 Forbidden (RBAC or namespace termination).
    #[error("{0}")]
    Forbidden(String),
    /// 401 Unauthorized: a bearer token the server does not know.
    #[error("Unauthorized")]
    Unauthorized,
    /// 500 InternalError (also used by fault injection).
    #[error("Internal error occurred: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status code of this error.
    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } => 404,
            ApiError::AlreadyExists { .. } | ApiError::Conflict { .. } => 409,
            ApiError::Invalid { .. } => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Expired { .. } => 410,
            ApiError::Forbidden(_) => 403,
            ApiError::Unauthorized => 401,
            ApiError::Internal(_) => 500,
        }
    }

    /// The `reason` field of the `Status` (`metav1.StatusReason`).
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Expired { .. } => "Expired",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Internal(_) => "InternalError",
        }
    }

    /// Builds a resourceVersion-precondition conflict with the API server's wording.
    pub fn modified(resource: &str, name: &str) -> ApiError {
        ApiError::Conflict {
            resource: resource.to_string(),
            name: name.to_string(),
            message: format!(
                "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            ),
            causes: Vec::new(),
        }
    }

    /// Builds a 422 with a single cause.
    pub fn invalid(
        kind: &str,
        group: &str,
        name: &str,
        field: &str,
        kind_of_cause: &str,
        message: &str,
    ) -> ApiError {
        ApiError::Invalid {
            kind: kind.to_string(),
            group: group.to_string(),
            name: name.to_string(),
            causes: vec![Cause {
                kind: kind_of_cause.to_string(),
                message: message.to_string(),
                field: field.to_string(),
            }],
        }
    }

    /// Renders the error as a `meta/v1 Status` JSON object.
    pub fn to_status(&self) -> Value {
        let mut details = serde_json::Map::new();
        let causes: &[Cause] = match self {
            ApiError::NotFound { resource, name } | ApiError::AlreadyExists { resource, name } => {
                split_resource(resource, name, &mut details);
                &[]
            }
            ApiError::Conflict {
                resource,
                name,
                causes,
                ..
            } => {
                split_resource(resource, name, &mut details);
                causes
            }
            ApiError::Invalid {
                kind,
                group,
                name,
                causes,
            } => {
                details.insert("name".into(), json!(name));
                details.insert("group".into(), json!(group));
                details.insert("kind".into(), json!(kind));
                causes
            }
            _ => &[],
        };
        if !causes.is_empty() {
            details.insert(
                "causes".into(),
                Value::Array(
                    causes
                        .iter()
                        .map(|c| json!({"reason": c.kind, "message": c.message, "field": c.field}))
                        .collect(),
                ),
            );
        }
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if !details.is_empty()
            && let Some(obj) = status.as_object_mut()
        {
            obj.insert("details".into(), Value::Object(details));
        }
        status
    }
}

fn split_resource(resource: &str, name: &str, details: &mut serde_json::Map<String, Value>) {
    let (kind, group) = match resource.split_once('.') {
        Some((plural, group)) => (plural, group),
        None => (resource, ""),
    };
    details.insert("name".into(), json!(name));
    details.insert("group".into(), json!(group));
    details.insert("kind".into(), json!(kind));
}

/// Errors of starting or running the simulator itself (not of a request).
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The listening socket could not be bound.
    #[error("cannot bind 127.0.0.1:{port}: {source}")]
    Bind {
        /// Port asked for (0 = any).
        port: u16,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a file (kubeconfig, RBAC YAML) failed.
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML document could not be parsed.
    #[error("cannot parse YAML: {0}")]
    Yaml(String),
    /// Preloading an object failed with an API error.
    #[error("api error: {0}")]
    Api(#[from] ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_renders_status_shape() {
        let e = ApiError::NotFound {
            resource: "statefulsets.apps".into(),
            name: "web".into(),
        };
        let s = e.to_status();
        assert_eq!(s["kind"], "Status");
        assert_eq!(s["code"], 404);
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(s["details"]["kind"], "statefulsets");
        assert_eq!(s["message"], "statefulsets.apps \"web\" not found");
    }

    #[test]
    fn invalid_lists_causes() {
        let e = ApiError::invalid(
            "StarRocksCluster",
            "starrocks.com",
            "a",
            "spec.x",
            "FieldValueRequired",
            "Required value",
        );
        let s = e.to_status();
        assert_eq!(s["code"], 422);
        assert_eq!(s["details"]["causes"][0]["field"], "spec.x");
        assert!(
            s["message"]
                .as_str()
                .unwrap_or_default()
                .contains("is invalid")
        );
    }
}
