//! The HTTP front: routes API paths to the verbs, applies faults, records the audit log.
//!
//! Paths as in the Kubernetes docs "API Concepts" ("Resource URIs"):
//! `/api/v1/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]` and
//! `/apis/{group}/{version}/[namespaces/{ns}/]{plural}[/{name}[/{subresource}]]`.

use crate::jsonpath::JsonPath;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::Value;

use crate::api::{self, DeleteOpts, ListQuery, Outcome, Target, WriteOpts};
use crate::audit::{AuditEntry, template_images};
use crate::discovery;
use crate::errors::ApiError;
use crate::faults::InjectedError;
use crate::lock;
use crate::openapi;
use crate::rbac;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::state::Shared;
use crate::table;
use crate::watch;

/// Largest accepted request body (bytes).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Builds the router.
pub fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(shared)
}

fn json_response(code: u16, body: &Value) -> Response {
    // `serde_json::to_vec` rather than `to_string` (`Display`), which writes through the
    // formatting machinery: about 2% of the simulator's CPU in the scale bench. Serializing a
    // `Value` cannot fail (its map keys are strings).
    bytes_response(code, serde_json::to_vec(body).unwrap_or_default())
}

/// A response with a JSON body already serialized.
fn bytes_response(code: u16, bytes: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.code(), &e.to_status())
}

/// Parsed query parameters.
#[derive(Debug, Default)]
struct Query(Vec<(String, String)>);

impl Query {
    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// What a request asked for, for the audit log.
struct Audit {
    verb: String,
    resource: String,
    subresource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    field_manager: Option<String>,
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let latency = sh.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (parts, body) = req.into_parts();
    let query = Query(
        parts
            .uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default(),
    );
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let headers = parts.headers;
    let method = parts.method;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if let Some(resp) = non_resource(&sh, &path, &headers) {
        return resp;
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return error_response(&ApiError::BadRequest(format!("cannot read body: {e}"))),
    };
    let (target, audit) = match route(&sh, &path, &method, &query) {
        Ok(x) => x,
        Err(e) => return error_response(&e),
    };
    let record = |code: u16, stored: Option<&Value>, template_changed: bool| {
        let workload = matches!(audit.resource.as_str(), "statefulsets" | "deployments");
        let is_write = !matches!(audit.verb.as_str(), "get" | "list" | "watch");
        let entry = AuditEntry {
            time: sh.clock.now(),
            verb: audit.verb.clone(),
            resource: audit.resource.clone(),
            subresource: audit.subresource.clone(),
            namespace: audit.namespace.clone(),
            name: audit.name.clone().or_else(|| {
                stored
                    .and_then(|o| o.at("/metadata/name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            }),
            user_agent: user_agent.clone(),
            field_manager: audit.field_manager.clone(),
            code,
            generation: if is_write {
                stored
                    .and_then(|o| o.at("/metadata/generation"))
                    .and_then(Value::as_i64)
            } else {
                None
            },
            images: if workload && is_write && code < 300 {
                stored.map(template_images).unwrap_or_default()
            } else {
                Vec::new()
            },
            template_changed,
            resource_version: if is_write && code < 300 {
                stored
                    .and_then(|o| o.at("/metadata/resourceVersion"))
                    .and_then(Value::as_str)
                    .and_then(|rv| rv.parse().ok())
            } else {
                None
            },
        };
        lock(&sh.audit).push(entry);
    };
    if let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        let identity = lock(&sh.tokens).get(token.trim()).cloned();
        let Some(identity) = identity else {
            record(401, None, false);
            return error_response(&ApiError::Unauthorized);
        };
        let access = rbac::Access {
            verb: &audit.verb,
            group: &target.rt.group,
            resource: &target.rt.plural,
            subresource: target.subresource.as_deref(),
            namespace: target.namespace.as_deref(),
            name: target.name.as_deref(),
        };
        if !sh.read(|s| rbac::allowed(s, &identity, &access)) {
            let e = ApiError::Forbidden(rbac::forbidden_message(&identity, &access));
            record(403, None, false);
            return error_response(&e);
        }
    }
    if let Some(injected) = sh.faults.roll(&audit.verb, &audit.resource) {
        let e = match injected {
            InjectedError::Conflict => ApiError::modified(
                &target.rt.qualified(),
                target.name.as_deref().unwrap_or_default(),
            ),
            InjectedError::Internal => ApiError::Internal("injected fault".into()),
        };
        record(e.code(), None, false);
        return error_response(&e);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let view = table::view_of(&accept);
    if audit.verb == "watch" {
        record(200, None, false);
        return watch::respond(sh.clone(), target, &query.0, view);
    }
    let manager = audit
        .field_manager
        .clone()
        .unwrap_or_else(|| default_manager(user_agent.as_deref()));
    let opts = WriteOpts {
        manager,
        force: query.flag("force"),
        dry_run: query.get("dryRun") == Some("All"),
        strict: query.get("fieldValidation") == Some("Strict"),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let result: Result<Answer, ApiError> = (|| match audit.verb.as_str() {
        "get" => sh.read(|s| api::get(s, &target)).map(Answer::Read),
        "list" => {
            let q = list_query(&query)?;
            sh.read(|s| api::list(s, &target, &q)).map(Answer::Read)
        }
        "create" => {
            let body: Value = parse_body(&body, &content_type)?;
            sh.write(|s| api::create(s, &sh.clock, &target, body, &opts))
                .map(Answer::Written)
        }
        "update" => {
            let body: Value = parse_body(&body, &content_type)?;
            sh.write(|s| api::update(s, &sh.clock, &target, body, &opts))
                .map(Answer::Written)
        }
        "patch" => {
            // An apply is merged outside the store's lock, into the object as read here, and
            // committed if it is still the stored one (see `api::prepare_patch`).
            let snapshot = sh.read(|s| {
                s.get_shared(
                    &target.rt.group,
                    &target.rt.plural,
                    target.ns(),
                    target.name(),
                )
            });
            let req = api::PatchRequest {
                target: &target,
                content_type: &content_type,
                body: &body,
                opts: &opts,
            };
            let prepared = api::prepare_patch(snapshot, &sh.clock, req);
            sh.write(|s| api::patch_prepared(s, &sh.clock, req, prepared))
                .map(Answer::Written)
        }
        "delete" => {
            let d = delete_opts(&query, &body);
            sh.write(|s| api::delete(s, &sh.clock, &target, &d))
                .map(Answer::Written)
        }
        "deletecollection" => {
            let q = list_query(&query)?;
            let d = delete_opts(&query, &body);
            sh.write(|s| api::delete_collection(s, &sh.clock, &target, &q, &d))
                .map(Answer::Read)
        }
        other => Err(ApiError::MethodNotAllowed(format!(
            "verb {other} is not supported"
        ))),
    })();
    match result {
        Ok(Answer::Written(o)) => {
            record(o.code, Some(&o.stored), o.template_changed);
            bytes_response(o.code, o.to_json())
        }
        Ok(Answer::Read(body)) => {
            let code = 200;
            record(code, Some(&body), false);
            let body = match view {
                table::View::Table if matches!(audit.verb.as_str(), "get" | "list") => {
                    let include_object = query.get("includeObject").unwrap_or("Metadata");
                    table::to_table(&target.rt, &body, include_object)
                }
                table::View::Metadata if matches!(audit.verb.as_str(), "get" | "list") => {
                    table::to_partial_metadata(&body)
                }
                _ => body,
            };
            json_response(code, &body)
        }
        Err(e) => {
            record(e.code(), None, false);
            error_response(&e)
        }
    }
}

/// What a request answers: a body read (or built, for a delete of a collection), with code
/// 200; or the outcome of a write, answered from the stored object without copying it.
enum Answer {
    Read(Value),
    Written(Outcome),
}

/// The manager name the API server derives from a user agent: the part before the first `/`.
fn default_manager(user_agent: Option<&str>) -> String {
    user_agent
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_string()
}

fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if content_type.contains("yaml") {
        let text = std::str::from_utf8(body)
            .map_err(|e| ApiError::BadRequest(format!("body is not UTF-8: {e}")))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("cannot parse YAML body: {e}")));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("cannot parse JSON body: {e}")))
}

fn list_query(q: &Query) -> Result<ListQuery, ApiError> {
    Ok(ListQuery {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or_default())?,
        limit: q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    })
}

fn delete_opts(q: &Query, body: &[u8]) -> DeleteOpts {
    let b: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    DeleteOpts {
        propagation: q
            .get("propagationPolicy")
            .map(str::to_string)
            .or_else(|| b["propagationPolicy"].as_str().map(str::to_string)),
        precondition_rv: b
            .at("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_uid: b
            .at("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        dry_run: q.get("dryRun") == Some("All")
            || b["dryRun"].as_array().is_some_and(|a| !a.is_empty()),
    }
}

fn non_resource(sh: &Shared, path: &str, headers: &HeaderMap) -> Option<Response> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    match path {
        "" | "/" => Some(json_response(
            200,
            &serde_json::json!({"paths": ["/api", "/api/v1", "/apis", "/version", "/openapi/v2", "/openapi/v3"]}),
        )),
        "/healthz" | "/readyz" | "/livez" => {
            let mut r = Response::new(Body::from("ok"));
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Some(r)
        }
        "/version" => Some(json_response(200, &discovery::version())),
        "/api" => Some(json_response(200, &discovery::api_versions())),
        "/apis" => Some(json_response(
            200,
            &sh.read(|s| discovery::group_list(&s.registry)),
        )),
        "/openapi/v2" => Some(json_response(
            404,
            &ApiError::NotFound {
                resource: "openapi".into(),
                name: "v2".into(),
            }
            .to_status(),
        )),
        "/openapi/v3" => Some(json_response(
            200,
            &sh.read(|s| openapi::index(&s.registry)),
        )),
        _ => {
            if let Some(gv) = path.strip_prefix("/openapi/v3/") {
                return Some(
                    match sh.read(|s| openapi::group_version_doc(&s.registry, gv)) {
                        Some(doc) => json_response(200, &doc),
                        None => error_response(&ApiError::NotFound {
                            resource: "openapi".into(),
                            name: gv.into(),
                        }),
                    },
                );
            }
            let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let doc = match segs.as_slice() {
                ["api", "v1"] => sh.read(|s| discovery::resource_list(&s.registry, "", "v1")),
                ["apis", g] => sh.read(|s| discovery::group(&s.registry, g)),
                ["apis", g, v] => sh.read(|s| discovery::resource_list(&s.registry, g, v)),
                _ => return None,
            };
            let _ = accept;
            Some(match doc {
                Some(d) => json_response(200, &d),
                None => error_response(&ApiError::NotFound {
                    resource: String::new(),
                    name: path.to_string(),
                }),
            })
        }
    }
}

/// Resolves an API path to a target and the audit facts of the request.
fn route(sh: &Shared, path: &str, method: &Method, q: &Query) -> Result<(Target, Audit), ApiError> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(ApiError::NotFound {
                resource: String::new(),
                name: path.to_string(),
            });
        }
    };
    let (namespace, plural, name, sub) = match rest {
        ["namespaces", ns, plural, tail @ ..] if !matches!(*plural, "status" | "finalize") => (
            Some(ns.to_string()),
            *plural,
            tail.first().copied(),
            tail.get(1).copied(),
        ),
        [plural, tail @ ..] => (None, *plural, tail.first().copied(), tail.get(1).copied()),
        [] => {
            return Err(ApiError::NotFound {
                resource: String::new(),
                name: path.to_string(),
            });
        }
    };
    let rt = sh
        .read(|s| s.registry.find(group, version, plural).cloned())
        .ok_or_else(|| ApiError::NotFound {
            resource: String::new(),
            name: path.to_string(),
        })?;
    let sub = match sub {
        None => None,
        Some("status") => Some("status".to_string()),
        Some("scale") if rt.scale.is_some() => Some("scale".to_string()),
        Some(other) => {
            return Err(ApiError::NotFound {
                resource: format!("{}/{other}", rt.qualified()),
                name: name.unwrap_or_default().into(),
            });
        }
    };
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if q.flag("watch") => "watch",
        ("GET", false) => "list",
        ("POST", false) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => {
            return Err(ApiError::MethodNotAllowed(format!(
                "the server does not allow this method on the requested resource ({m} {path})"
            )));
        }
    };
    let audit = Audit {
        verb: verb.to_string(),
        resource: rt.plural.clone(),
        subresource: sub.clone(),
        namespace: namespace.clone(),
        name: name.map(str::to_string),
        field_manager: q.get("fieldManager").map(str::to_string),
    };
    let target = Target {
        namespace: if rt.namespaced { namespace } else { None },
        rt,
        name: name.map(str::to_string),
        subresource: sub,
    };
    Ok((target, audit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_from_user_agent() {
        assert_eq!(
            default_manager(Some("kubectl/v1.32.4 (linux/amd64) kubernetes/abc")),
            "kubectl"
        );
        assert_eq!(default_manager(None), "unknown");
    }
}
