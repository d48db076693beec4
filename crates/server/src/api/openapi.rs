use axum::Json;
use utoipa::OpenApi;

use super::ApiDoc;

/// Declares the Bearer key scheme every route but the public ones needs.
pub(super) struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "api_key",
            Vec::<String>::new(),
        )]);
    }
}

/// Documents the error answers every operation can give besides its own:
/// any may answer 429 (the listener refuses a connection over the per-source
/// or total cap with `too_many_connections`; a sandbox route may also meet
/// the team's quota when it resumes a paused sandbox); a route behind the
/// key check answers 401 (no or bad credentials) and 403 (the key lacks the
/// route's scope, or a sandbox token calls a route not open to it); an
/// operation taking parameters or a body answers 400 for input it cannot
/// decode; one taking a JSON body answers 413 past
/// [`crate::extract::JSON_BODY_LIMIT`]. All are `ApiError` bodies. An
/// operation that declares its own security (the public ones: `security:
/// [{}]`) gets no 401/403 from here; it documents what it answers. An
/// operation's own description of a status wins.
pub(super) struct CommonErrors;

impl utoipa::Modify for CommonErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                add_common_errors(op);
            }
        }
    }
}

fn add_common_errors(op: &mut utoipa::openapi::path::Operation) {
    let public = op.security.is_some();
    let takes_input = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let (has_body, json_body) = match &op.request_body {
        Some(utoipa::openapi::RefOr::T(body)) => {
            (true, body.content.contains_key("application/json"))
        }
        Some(utoipa::openapi::RefOr::Ref(_)) => (true, false),
        None => (false, false),
    };
    let mut add = |status: &str, description: &str| {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(description).into());
    };
    add(
        "429",
        "too many connections from this address, or a quota or host limit reached",
    );
    if !public {
        add("401", "no valid API key or sandbox token");
        add("403", "the credentials do not grant this operation");
    }
    if takes_input || has_body {
        add(
            "400",
            "a parameter or the body is malformed or out of range",
        );
    }
    if json_body {
        add("413", "the JSON body is larger than 1 MiB");
    }
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ApiError")))
                .build(),
        )
        .build()
}

/// Spells unsigned integers as the document's readers know them: utoipa
/// writes a `u32` as format `u-int32` with only `minimum: 0`; this makes
/// it `uint32` with `maximum` the type's largest value (`uint8` to
/// `uint64`), so a client or a fuzzer knows 2^32 is out of range. Walks
/// every schema: components, parameters, request and response bodies.
pub(super) struct UnsignedFormats;

impl utoipa::Modify for UnsignedFormats {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        if let Some(components) = openapi.components.as_mut() {
            components.schemas.values_mut().for_each(spell_unsigned);
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in operations.into_iter().flatten() {
                for param in op.parameters.iter_mut().flatten() {
                    if let RefOr::T(param) = param {
                        param.schema.iter_mut().for_each(spell_unsigned);
                    }
                }
                if let Some(RefOr::T(body)) = op.request_body.as_mut() {
                    for content in body.content.values_mut() {
                        if let RefOr::T(content) = content {
                            content.schema.iter_mut().for_each(spell_unsigned);
                        }
                    }
                }
                for response in op.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        for content in response.content.values_mut() {
                            if let RefOr::T(content) = content {
                                content.schema.iter_mut().for_each(spell_unsigned);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn spell_unsigned(schema: &mut utoipa::openapi::RefOr<utoipa::openapi::Schema>) {
    use utoipa::openapi::schema::{AdditionalProperties, ArrayItems, KnownFormat, SchemaFormat};
    use utoipa::openapi::{RefOr, Schema};
    let RefOr::T(schema) = schema else {
        return;
    };
    match schema {
        Schema::Object(object) => {
            let bits = match &object.format {
                Some(SchemaFormat::KnownFormat(KnownFormat::UInt8)) => Some(8),
                Some(SchemaFormat::KnownFormat(KnownFormat::UInt16)) => Some(16),
                Some(SchemaFormat::KnownFormat(KnownFormat::UInt32)) => Some(32),
                Some(SchemaFormat::KnownFormat(KnownFormat::UInt64)) => Some(64),
                _ => None,
            };
            if let Some(bits) = bits {
                object.format = Some(SchemaFormat::Custom(format!("uint{bits}")));
                let largest = u64::MAX >> (64 - bits);
                object.maximum.get_or_insert(utoipa::Number::UInt(
                    usize::try_from(largest).unwrap_or(usize::MAX),
                ));
            }
            object.properties.values_mut().for_each(spell_unsigned);
            if let Some(AdditionalProperties::RefOr(values)) =
                object.additional_properties.as_deref_mut()
            {
                spell_unsigned(values);
            }
        }
        Schema::Array(array) => {
            if let ArrayItems::RefOrSchema(items) = &mut array.items {
                spell_unsigned(items);
            }
        }
        Schema::OneOf(one) => one.items.iter_mut().for_each(spell_unsigned),
        Schema::AllOf(all) => all.items.iter_mut().for_each(spell_unsigned),
        Schema::AnyOf(any) => any.items.iter_mut().for_each(spell_unsigned),
        _ => {}
    }
}

/// Serves the OpenAPI document; needs no key.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_endpoints_and_their_schemas_are_documented() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/v1/audit/entries",
            "/v1/audit/entries/{index}/proof",
            "/v1/audit/consistency",
            "/v1/audit/heads",
            "/v1/sandboxes/{id}/timeline",
        ] {
            assert!(doc["paths"][path].is_object(), "{path} missing");
        }
        for schema in [
            "AuditEntryList",
            "InclusionProof",
            "ConsistencyProof",
            "AuditHeads",
            "Timeline",
        ] {
            assert!(
                doc["components"]["schemas"][schema].is_object(),
                "{schema} missing"
            );
        }
    }

    fn operations(doc: &serde_json::Value) -> Vec<(String, String, &serde_json::Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                ops.push((method.clone(), path.clone(), op));
            }
        }
        ops
    }

    #[test]
    fn every_operation_documents_the_errors_any_route_can_give() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let public = [
            ("get", "/v1/health"),
            ("post", "/v1/hooks/{id}/deliver"),
            ("post", "/v1/session"),
            ("get", "/v1/session"),
            ("delete", "/v1/session"),
        ];
        for (method, path, op) in operations(&doc) {
            let is_public = public.contains(&(method.as_str(), path.as_str()));
            assert_eq!(
                op.get("security"),
                is_public.then(|| serde_json::json!([{}])).as_ref(),
                "{method} {path}: only the public routes waive the key"
            );
            let mut want = vec!["429"];
            if !is_public {
                want.extend(["401", "403"]);
            }
            let takes_input = op["parameters"].as_array().is_some_and(|p| !p.is_empty())
                || op.get("requestBody").is_some();
            if takes_input {
                want.push("400");
            }
            if op["requestBody"]["content"]
                .get("application/json")
                .is_some()
            {
                want.push("413");
            }
            for status in want {
                let schema = &op["responses"][status]["content"]["application/json"]["schema"];
                assert_eq!(
                    schema["$ref"], "#/components/schemas/ApiError",
                    "{method} {path} does not document {status}"
                );
            }
        }
    }

    #[test]
    fn parameters_are_where_the_handlers_read_them() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for (method, path, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let in_template = path.contains(&format!("{{{name}}}"));
                let want = if in_template { "path" } else { "query" };
                assert_eq!(p["in"], want, "{method} {path}: parameter {name}");
            }
        }
        let heads = &doc["paths"]["/v1/audit/heads"]["get"]["parameters"][0];
        assert_eq!(heads["required"], false, "{heads}");
    }

    #[test]
    fn unsigned_integers_state_their_range() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(!doc.to_string().contains("u-int"));
        let quota = &doc["components"]["schemas"]["QuotaLimits"]["properties"];
        assert_eq!(quota["max_sandboxes"]["format"], "uint32");
        assert_eq!(quota["max_sandboxes"]["maximum"], u64::from(u32::MAX));
        assert_eq!(quota["max_snapshot_bytes"]["format"], "uint64");
        assert_eq!(quota["max_snapshot_bytes"]["maximum"], u64::MAX);
    }

    #[test]
    fn a_network_policy_may_leave_out_any_field_and_takes_no_other() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schema = &doc["components"]["schemas"]["NetworkPolicySchema"];
        assert!(schema.get("required").is_none(), "{schema}");
        assert_eq!(schema["additionalProperties"], false, "{schema}");
        let internet = &doc["components"]["schemas"]["InternetSchema"];
        assert_eq!(internet["enum"], serde_json::json!(["deny", "allow"]));
    }

    #[test]
    fn event_data_is_any_json_value_and_a_timers_after_seconds_or_text() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        // `data` defaults to null and takes any value (a sent null came
        // back against a documented `type: object`).
        for (schema, field) in [
            ("SendEventRequest", "data"),
            ("Event", "data"),
            ("TimerEvent", "data"),
            ("Timer", "data"),
        ] {
            let data = &schemas[schema]["properties"][field];
            assert!(data.get("type").is_none(), "{schema}.{field}: {data}");
        }
        let after =
            serde_json::to_string(&schemas["CreateTimerRequest"]["properties"]["after"]).unwrap();
        assert!(after.contains("TimerAfterSchema"), "{after}");
        let kinds: Vec<_> = schemas["TimerAfterSchema"]["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["type"].clone())
            .collect();
        assert_eq!(
            kinds,
            [serde_json::json!("integer"), serde_json::json!("string")]
        );
    }
}
