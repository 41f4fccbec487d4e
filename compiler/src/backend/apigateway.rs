//! API Gateway: the request model as JSON Schema draft-04 and an OpenAPI 3 document.
//!
//! Draft-04 expresses most of a contract: types, required fields, lengths, full-match patterns,
//! enums, numeric bounds and, through `oneOf` over the variants, per-variant fields and rules.
//! It cannot express time windows relative to ingest time, calendar validity of dates and
//! timestamps (only their shape), decimal precision and scale, or duplicate keys; the
//! generated validators check those. `docs/conformance.md` lists the differences.

use serde_json::{Value, json};

use super::GeneratedFile;
use crate::ir::{
    Bound, Contract, ContractSet, Element, Field, FormatItem, Literal, Rule, RuleKind, Type,
    UnknownFields, Valid,
};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        files.push(GeneratedFile::new(
            format!("{}/apigateway/request-model.json", c.name),
            super::pretty_json(&request_model(c)),
        ));
        if c.ingest.batch_route.is_some() {
            files.push(GeneratedFile::new(
                format!("{}/apigateway/batch-request-model.json", c.name),
                super::pretty_json(&batch_request_model(c)),
            ));
        }
        files.push(GeneratedFile::new(
            format!("{}/apigateway/openapi.json", c.name),
            super::pretty_json(&openapi(c)),
        ));
    }
    files
}

/// The model's name in API Gateway (alphanumeric): the contract's name in PascalCase (`a__b`
/// has an empty word between its underscores).
pub fn model_name(c: &Contract) -> String {
    c.name
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| p[..1].to_uppercase() + &p[1..])
        .collect::<String>()
        + "Event"
}

/// The draft-04 JSON Schema of one event. With supported releases (#20), an event of any
/// supported version passes (`anyOf`): a model cannot read the `X-Contract-Version` header,
/// so the version an event is judged as is the Glue job's (and the edge function's) to apply.
pub fn request_model(c: &Contract) -> Value {
    let releases: Vec<&Contract> = c.supported_releases().map(|r| &r.contract).collect();
    let (model, versions) = if releases.is_empty() {
        (version_model(c), c.version.to_string())
    } else {
        let all: Vec<&Contract> = std::iter::once(c).chain(releases).collect();
        let versions: Vec<String> = all.iter().map(|v| v.version.to_string()).collect();
        let schemas: Vec<Value> = all
            .iter()
            .map(|v| {
                let mut schema = version_model(v);
                schema["title"] = json!(format!("{} {}", c.name, v.version));
                schema
            })
            .collect();
        (json!({ "anyOf": schemas }), versions.join(" or "))
    };
    let mut model = model;
    let object = model
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut out = serde_json::Map::new();
    out.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-04/schema#"),
    );
    out.insert("title".into(), json!(model_name(c)));
    out.insert(
        "description".into(),
        json!(format!(
            "Contract {} {versions}: the subset of its rules JSON Schema draft-04 can express.",
            c.name
        )),
    );
    out.extend(object);
    Value::Object(out)
}

/// One version's event schema.
fn version_model(c: &Contract) -> Value {
    match &c.variants {
        None => object_schema(
            c.fields
                .iter()
                .map(|f| (f, f.required, Vec::new()))
                .collect(),
            closed(c),
        ),
        Some(variants) => {
            // One schema per variant: envelope + payload, with the variant's requirements and
            // rules, the discriminator pinned to the variant's value.
            let cases: Vec<Value> = variants
                .cases
                .iter()
                .map(|case| {
                    let members: Vec<(&Field, bool, Vec<Rule>)> =
                        contract_manifest::shape_fields(&c.fields, Some(case))
                            .into_iter()
                            .map(|shape| {
                                (shape.field, shape.required, shape.variant_rules.to_vec())
                            })
                            .collect();
                    let mut schema = object_schema(members, closed(c));
                    schema["properties"][&variants.discriminator] =
                        json!({ "type": "string", "enum": [case.value] });
                    schema["title"] = json!(format!("{}: {}", variants.discriminator, case.value));
                    schema
                })
                .collect();
            json!({ "type": "object", "oneOf": cases })
        }
    }
}

fn closed(c: &Contract) -> bool {
    // Unknown fields that are dropped or only warned about must pass the gateway.
    matches!(
        c.ingest.unknown_fields,
        UnknownFields::Reject | UnknownFields::Quarantine
    )
}

fn object_schema(members: Vec<(&Field, bool, Vec<Rule>)>, closed: bool) -> Value {
    let mut properties = serde_json::Map::new();
    let mut required = Vec::new();
    for (field, is_required, extra) in members {
        let rules: Vec<Rule> = field.rules.iter().cloned().chain(extra).collect();
        let schema = value_schema(&field.ty, &rules, !is_required);
        properties.insert(field.name.clone(), schema);
        if is_required {
            required.push(json!(field.name));
        }
    }
    let mut schema =
        json!({ "type": "object", "properties": properties, "additionalProperties": !closed });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

fn element_schema(e: &Element) -> Value {
    value_schema(&e.ty, &e.rules, !e.required)
}

fn value_schema(ty: &Type, rules: &[Rule], nullable: bool) -> Value {
    let mut schema = match ty {
        Type::String => json!({ "type": "string" }),
        Type::Boolean => json!({ "type": "boolean" }),
        Type::Int => json!({ "type": "integer", "minimum": i32::MIN, "maximum": i32::MAX }),
        Type::Long => json!({ "type": "integer", "minimum": i64::MIN, "maximum": i64::MAX }),
        Type::Float | Type::Double => json!({ "type": "number" }),
        Type::Decimal { .. } => {
            json!({ "type": ["number", "string"], "pattern": "^-?[0-9]+(\\.[0-9]+)?([eE][+-]?[0-9]+)?$" })
        }
        Type::Date => json!({ "type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$" }),
        Type::Timestamp { format } => {
            json!({ "type": "string", "pattern": format!("^{}$", format_regex(&format.items)) })
        }
        Type::TimestampTz => json!({
            "type": "string",
            "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
        }),
        Type::Uuid => {
            json!({ "type": "string", "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$" })
        }
        Type::List(e) => json!({ "type": "array", "items": element_schema(e) }),
        Type::Map { key, value } => {
            let mut schema =
                json!({ "type": "object", "additionalProperties": element_schema(value) });
            // Key rules: draft-04 has no propertyNames; a key pattern becomes patternProperties.
            if let Some(pattern) = key.rules.iter().find_map(|r| match &r.kind {
                RuleKind::Pattern(p) => Some(p.clone()),
                _ => None,
            }) {
                schema["patternProperties"] =
                    json!({ format!("^(?:{pattern})$"): element_schema(value) });
                schema["additionalProperties"] = json!(false);
            }
            schema
        }
        Type::Struct(fields) => object_schema(
            fields.iter().map(|f| (f, f.required, Vec::new())).collect(),
            true,
        ),
    };
    for rule in rules {
        apply_rule(&mut schema, ty, rule);
    }
    if nullable {
        // The validators treat null like an absent optional field.
        match schema.get("type").cloned() {
            Some(Value::String(t)) => schema["type"] = json!([t, "null"]),
            Some(Value::Array(mut ts)) => {
                ts.push(json!("null"));
                schema["type"] = Value::Array(ts);
            }
            _ => {}
        }
        if let Some(values) = schema.get_mut("enum").and_then(Value::as_array_mut) {
            values.push(Value::Null);
        }
    }
    schema
}

fn apply_rule(schema: &mut Value, ty: &Type, rule: &Rule) {
    let (min_key, max_key) = match ty {
        Type::String => ("minLength", "maxLength"),
        Type::List(_) => ("minItems", "maxItems"),
        _ => ("minProperties", "maxProperties"),
    };
    match &rule.kind {
        RuleKind::Min(b) => schema["minimum"] = bound_json(*b),
        RuleKind::Max(b) => schema["maximum"] = bound_json(*b),
        RuleKind::MinLength(n) => schema[min_key] = json!(n),
        RuleKind::MaxLength(n) => schema[max_key] = json!(n),
        RuleKind::Pattern(p) => {
            let full = format!("^(?:{p})$");
            // Two patterns on one value (envelope and variant) must both hold.
            match schema.get("pattern").cloned() {
                Some(existing) => {
                    let all = schema
                        .get("allOf")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let mut all = all;
                    all.push(json!({ "pattern": existing }));
                    all.push(json!({ "pattern": full }));
                    schema["allOf"] = json!(all);
                    if let Some(o) = schema.as_object_mut() {
                        o.remove("pattern");
                    }
                }
                None => schema["pattern"] = json!(full),
            }
        }
        RuleKind::OneOf(values) => {
            let values: Vec<Value> = values
                .iter()
                .map(|l| match l {
                    Literal::String(s) => json!(s),
                    Literal::Int(i) => json!(i),
                })
                .collect();
            schema["enum"] = json!(values);
        }
        // Relative to ingest time: not expressible in JSON Schema.
        RuleKind::NotBefore(_) | RuleKind::NotAfter(_) => {}
    }
}

fn bound_json(b: Bound) -> Value {
    match b {
        Bound::Int(i) => json!(i),
        Bound::Float(f) => json!(f),
    }
}

/// Escapes regex metacharacters only: `\-` and friends are errors in some dialects (ECMA with
/// the `u` flag), while plain punctuation means itself in all of them.
pub fn escape_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if ".^$|?*+()[]{}\\/".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A regex for the shape of a timestamp format (not its calendar validity).
pub fn format_regex(items: &[FormatItem]) -> String {
    items
        .iter()
        .map(|i| match i {
            FormatItem::Literal(l) => escape_literal(l),
            FormatItem::Year => "[0-9]{4}".into(),
            FormatItem::Month
            | FormatItem::Day
            | FormatItem::Hour
            | FormatItem::Minute
            | FormatItem::Second => "[0-9]{2}".into(),
            FormatItem::Fraction => "(\\.[0-9]{1,9})?".into(),
        })
        .collect()
}

/// The mapping template of the Kinesis integration: the `PutRecord` request, whose data is the
/// stream record the Glue job reads — an envelope with what the job needs besides the body:
///
/// ```json
/// {"contractc": 1, "request_id": "…", "received_at_ms": 1700000000000,
///  "claims": {"sub": "<base64>"}, "client_contract_version": "<base64>",
///  "body": "<base64 of the request body>"}
/// ```
///
/// The body and the claims travel base64-encoded, so no text a client controls needs JSON
/// escaping in VTL. Claims come only from the headers the JWT front door overwrites with the
/// verified token's claims (`contract_manifest::claim_header`), never from `$input.params(x)`,
/// which would look at the path and the query string first. A request without the front
/// door's secret (one that reached this API around the front door) renders no `Data`, so
/// Kinesis refuses it and nothing is put.
pub fn stream_record_template(c: &Contract, partition_key: &str) -> String {
    let mut out = request_prelude(c);
    out.push_str(&format!(
        "#set($record = \"{}\")\n",
        envelope(c, "$context.requestId", "$input.body")
    ));
    out.push_str(&front_door_check());
    out.push_str(&format!(
        "{{\"StreamName\": \"${{stream_name}}\", \"Data\": \"$util.base64Encode($record)\", \"PartitionKey\": \"{partition_key}\"}}\n"
    ));
    out.push_str("#else\n");
    out.push_str("{\"StreamName\": \"${stream_name}\"}\n");
    out.push_str("#end\n");
    out
}

/// The mapping template of the batch route's Kinesis integration: one `PutRecords` request
/// with one record per event of the array, each record the envelope the single route puts
/// (`stream_record_template`), its request id the request's with the event's index
/// (`<requestId>-<i>`, as `serve` names a batch's events) and its body that one event as API
/// Gateway writes it back (`$input.json`), so the Glue job reads batch records unchanged. The
/// partition key is the event's request id: a batch spreads over the shards. Without the front
/// door's secret the request has no records, which Kinesis refuses.
pub fn stream_records_template(c: &Contract) -> String {
    let mut out = request_prelude(c);
    out.push_str(&front_door_check());
    out.push_str("{\"StreamName\": \"${stream_name}\", \"Records\": [\n");
    out.push_str("#foreach($event in $input.path('$'))\n");
    // Formal references: VTL identifiers may contain `-`, so `$context.requestId-` would read
    // as a property of that name.
    out.push_str("#set($id = \"${context.requestId}-${foreach.index}\")\n");
    // `$[i]` is JSONPath, not a reference: `$[` starts no VTL reference.
    out.push_str("#set($body = $input.json(\"$[$foreach.index]\"))\n");
    out.push_str(&format!(
        "#set($record = \"{}\")\n",
        envelope(c, "$id", "$body")
    ));
    out.push_str(
        "{\"Data\": \"$util.base64Encode($record)\", \"PartitionKey\": \"$id\"}#if($foreach.hasNext),#end\n",
    );
    out.push_str("#end\n");
    out.push_str("]}\n");
    out.push_str("#else\n");
    out.push_str("{\"StreamName\": \"${stream_name}\", \"Records\": []}\n");
    out.push_str("#end\n");
    out
}

/// What both request templates read from the request before building envelopes: the claim
/// headers (`$claim0`, …) and the client's contract version header (`$client`).
fn request_prelude(c: &Contract) -> String {
    let manifest = c.manifest();
    let mut out = String::new();
    out.push_str("#set($q = '\"')\n");
    out.push_str("#set($headers = $input.params().header)\n");
    for (i, claim) in manifest.enrichment_claims().iter().enumerate() {
        let header = contract_manifest::claim_header(claim);
        out.push_str(&format!("#set($claim{i} = '')\n"));
        out.push_str(&format!("#set($claim{i} = $headers.get('{header}'))\n"));
    }
    // The client's generated-from contract version (informational: the client's word).
    out.push_str("#set($client = '')\n#set($client = $headers.get('x-contract-version'))\n");
    out
}

/// The envelope of one stream record as a VTL string literal's contents (`${q}` is a double
/// quote): `request_id` and `body` are VTL expressions.
fn envelope(c: &Contract, request_id: &str, body: &str) -> String {
    let claims: Vec<String> = c
        .manifest()
        .enrichment_claims()
        .iter()
        .enumerate()
        .map(|(i, claim)| format!("${{q}}{claim}${{q}}:${{q}}$util.base64Encode($claim{i})${{q}}"))
        .collect();
    format!(
        "{{${{q}}contractc${{q}}:1,${{q}}request_id${{q}}:${{q}}{request_id}${{q}},${{q}}received_at_ms${{q}}:$context.requestTimeEpoch,${{q}}claims${{q}}:{{{}}},${{q}}client_contract_version${{q}}:${{q}}$util.base64Encode($client)${{q}},${{q}}body${{q}}:${{q}}$util.base64Encode({body})${{q}}}}",
        claims.join(",")
    )
}

/// Opens the `#if` that renders records only for requests carrying the front door's secret.
fn front_door_check() -> String {
    // Quiet references (`$!x`) render an absent value as "", so "no secret configured" and
    // "no secret presented" never compare equal by both being null.
    format!(
        "#set($secret = \"$!stageVariables.{}\")\n#set($presented = \"$!headers.get('{}')\")\n#if($secret != '' && $presented == $secret)\n",
        contract_manifest::EDGE_SECRET_STAGE_VARIABLE,
        contract_manifest::EDGE_SECRET_HEADER,
    )
}

/// Kinesis `PutRecords` takes at most this many records per call: a larger batch could never
/// be put, so the batch model refuses it (400) instead of every such request failing (500).
pub const PUT_RECORDS_MAX: u64 = 500;

/// The model's name of the batch route's body.
pub fn batch_model_name(c: &Contract) -> String {
    model_name(c) + "Batch"
}

/// The draft-04 JSON Schema of a batch: an array of 1 to `max_batch_events` events (at most
/// `PUT_RECORDS_MAX`), each as the event model. An empty batch is refused here (Kinesis takes
/// no empty `PutRecords`).
pub fn batch_request_model(c: &Contract) -> Value {
    let mut item = request_model(c);
    if let Some(item) = item.as_object_mut() {
        item.remove("$schema");
    }
    json!({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": batch_model_name(c),
        "description": format!(
            "A batch of contract {} {} events: a JSON array, each item as the event model {}.",
            c.name, c.version, model_name(c)
        ),
        "type": "array",
        "minItems": 1,
        "maxItems": c.ingest.max_batch_events.min(PUT_RECORDS_MAX),
        "items": item,
    })
}

/// The CORS headers the reference's Lambda answers with.
fn cors_parameters() -> Value {
    json!({
        "method.response.header.Access-Control-Allow-Origin": "'*'",
        "method.response.header.Access-Control-Allow-Credentials": "'true'"
    })
}

/// A Kinesis failure (any 4xx or 5xx of the call: throttling, no records) is the API's 500,
/// so clients retry instead of taking the events as added.
pub const FAILURE_PATTERN: &str = "[45]\\d{2}";

/// The integration responses of a route: the default (Kinesis answered 200) with `ok` as its
/// template, and the 500 for Kinesis failures with `failed` as its body.
fn integration_responses(ok: &str, failed: &str) -> Value {
    json!({
        "default": {
            "statusCode": "200",
            "responseParameters": cors_parameters(),
            "responseTemplates": { "application/json": ok }
        },
        FAILURE_PATTERN: {
            "statusCode": "500",
            "responseParameters": cors_parameters(),
            "responseTemplates": { "application/json": failed }
        }
    })
}

/// The batch route's answer to a `PutRecords` Kinesis took: one result per event, in order
/// (`added`, or `failed` with Kinesis' error code and message), and the counts. A batch with
/// any failed record is a 500 (with the same body), so a client that only looks at the status
/// sends it again instead of losing events; one that reads the results can resend the failed
/// ones only.
pub const BATCH_RESPONSE_TEMPLATE: &str = concat!(
    "#set($answer = $input.path('$'))\n",
    "#set($failed = 0)\n",
    "#set($failed = $answer.FailedRecordCount)\n",
    "#set($added = $answer.Records.size() - $failed)\n",
    "#if($failed > 0)\n",
    "#set($context.responseOverride.status = 500)\n",
    "#end\n",
    "{\"request_id\": \"$context.requestId\", \"added\": $added, \"failed\": $failed, \"results\": [\n",
    "#foreach($record in $answer.Records)\n",
    "#if(\"$!record.ErrorCode\" == \"\")\n",
    "{\"index\": $foreach.index, \"result\": \"added\"}",
    "#else\n",
    "{\"index\": $foreach.index, \"result\": \"failed\", \"error\": \"$util.escapeJavaScript(\"$!record.ErrorCode\").replaceAll(\"\\\\'\",\"'\")\", \"message\": \"$util.escapeJavaScript(\"$!record.ErrorMessage\").replaceAll(\"\\\\'\",\"'\")\"}",
    "#end\n",
    "#if($foreach.hasNext),#end\n",
    "#end\n",
    "]}\n",
);

/// OpenAPI 3 for the ingest route(s), with API Gateway's extensions: the model, a request
/// validator, the JWT authorizer settings and the Kinesis integration. `${...}` placeholders
/// are filled by `contract-runtime deploy`.
pub fn openapi(c: &Contract) -> Value {
    let model = model_name(c);
    let issuer = match &c.ingest.auth.issuer {
        crate::ir::Issuer::Dev => "${issuer}".to_string(),
        crate::ir::Issuer::Url(u) => u.clone(),
    };
    // The request id spreads records over shards; a body value would be client text pasted
    // into the PutRecord JSON unescaped (a quote or a control character breaks it).
    let partition_key = "$context.requestId".to_string();
    let single = json!({
        "post": {
            "operationId": format!("put{model}"),
            "summary": format!("Ingest one `{}` event", c.name),
            "security": [{ "jwt": c.ingest.auth.scopes }],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{model}") } } }
            },
            "responses": {
                "200": { "description": "Accepted", "content": { "application/json": { "schema": { "type": "string" } } } },
                "400": { "description": "The event breaks the contract" },
                "401": { "description": "Unauthorized" },
                "403": { "description": "The token lacks an allowed scope" },
                "413": { "description": "Body over the contract's limit" },
                "500": { "description": "Kinesis refused the event" }
            },
            "x-amazon-apigateway-request-validator": "body-only",
            "x-amazon-apigateway-integration": {
                "type": "aws",
                "httpMethod": "POST",
                "uri": "arn:aws:apigateway:${region}:kinesis:action/PutRecord",
                "credentials": "${api_role_arn}",
                "passthroughBehavior": "never",
                "requestTemplates": {
                    "application/json": stream_record_template(c, &partition_key)
                },
                "responses": integration_responses("\"Successfully added event\"", "\"Failed to add event\"")
            }
        }
    });
    let mut paths = serde_json::Map::new();
    paths.insert(c.ingest.route.clone(), single);
    let mut schemas = serde_json::Map::new();
    schemas.insert(model.clone(), request_model(c));
    if let Some(route) = &c.ingest.batch_route {
        paths.insert(route.clone(), batch_path(c));
        schemas.insert(batch_model_name(c), batch_request_model(c));
    }
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": format!("{} ingest", c.name),
            "version": c.version.to_string(),
            "description": c.description.clone().unwrap_or_default(),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "jwt": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "x-amazon-apigateway-authtype": "custom",
                    "x-amazon-apigateway-authorizer": {
                        "type": "jwt",
                        "identitySource": "$request.header.Authorization",
                        "jwtConfiguration": { "issuer": issuer, "audience": [c.ingest.auth.audience] }
                    }
                }
            }
        },
        "x-amazon-apigateway-request-validators": {
            "body-only": { "validateRequestBody": true, "validateRequestParameters": false }
        },
        "x-amazon-apigateway-minimum-compression-size": -1,
        "x-contractc": { "contract": c.name, "fingerprint": c.source.fingerprint, "max_body_bytes": c.ingest.max_body_bytes }
    })
}

/// The batch route: a JSON array of events, validated by the batch model, put with one
/// `PutRecords`, answered with a result per event.
fn batch_path(c: &Contract) -> Value {
    let model = batch_model_name(c);
    json!({
        "post": {
            "operationId": format!("put{model}"),
            "summary": format!("Ingest a batch of `{}` events (a JSON array)", c.name),
            "security": [{ "jwt": c.ingest.auth.scopes }],
            "requestBody": {
                "required": true,
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{model}") } } }
            },
            "responses": {
                "200": { "description": "Every event was added to the stream: a result per event", "content": { "application/json": { "schema": { "type": "object" } } } },
                "400": { "description": "An event breaks the contract, or the batch is empty or over its limit" },
                "401": { "description": "Unauthorized" },
                "403": { "description": "The token lacks an allowed scope" },
                "500": { "description": "Kinesis refused the batch or some of its events: a result per event when it answered" }
            },
            "x-amazon-apigateway-request-validator": "body-only",
            "x-amazon-apigateway-integration": {
                "type": "aws",
                "httpMethod": "POST",
                "uri": "arn:aws:apigateway:${region}:kinesis:action/PutRecords",
                "credentials": "${api_role_arn}",
                "passthroughBehavior": "never",
                "requestTemplates": {
                    "application/json": stream_records_template(c)
                },
                "responses": integration_responses(BATCH_RESPONSE_TEMPLATE, "\"Failed to add events\"")
            }
        }
    })
}
