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
        files.push(GeneratedFile::new(
            format!("{}/apigateway/openapi.json", c.name),
            super::pretty_json(&openapi(c)),
        ));
    }
    files
}

/// The model's name in API Gateway (alphanumeric).
pub fn model_name(c: &Contract) -> String {
    c.name
        .split('_')
        .map(|p| p[..1].to_uppercase() + &p[1..])
        .collect::<String>()
        + "Event"
}

/// The draft-04 JSON Schema of one event.
pub fn request_model(c: &Contract) -> Value {
    let mut model = match &c.variants {
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
                    let mut members: Vec<(&Field, bool, Vec<Rule>)> = c
                        .fields
                        .iter()
                        .map(|f| {
                            let extra = case
                                .rules
                                .iter()
                                .find(|(n, _)| n == &f.name)
                                .map(|(_, r)| r.clone())
                                .unwrap_or_default();
                            (f, f.required || case.require.contains(&f.name), extra)
                        })
                        .collect();
                    members.extend(case.fields.iter().map(|f| (f, f.required, Vec::new())));
                    let mut schema = object_schema(members, closed(c));
                    schema["properties"][&variants.discriminator] =
                        json!({ "type": "string", "enum": [case.value] });
                    schema["title"] = json!(format!("{}: {}", variants.discriminator, case.value));
                    schema
                })
                .collect();
            json!({ "type": "object", "oneOf": cases })
        }
    };
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
            "Contract {} {}: the subset of its rules JSON Schema draft-04 can express.",
            c.name, c.version
        )),
    );
    out.extend(object);
    Value::Object(out)
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
    let manifest = c.manifest();
    let mut out = String::new();
    out.push_str("#set($q = '\"')\n");
    out.push_str("#set($headers = $input.params().header)\n");
    let mut claims = Vec::new();
    for (i, claim) in manifest.enrichment_claims().iter().enumerate() {
        let header = contract_manifest::claim_header(claim);
        out.push_str(&format!("#set($claim{i} = '')\n"));
        out.push_str(&format!("#set($claim{i} = $headers.get('{header}'))\n"));
        claims.push(format!(
            "${{q}}{claim}${{q}}:${{q}}$util.base64Encode($claim{i})${{q}}"
        ));
    }
    // The client's generated-from contract version (informational: the client's word).
    out.push_str("#set($client = '')\n#set($client = $headers.get('x-contract-version'))\n");
    out.push_str(&format!(
        "#set($record = \"{{${{q}}contractc${{q}}:1,${{q}}request_id${{q}}:${{q}}$context.requestId${{q}},${{q}}received_at_ms${{q}}:$context.requestTimeEpoch,${{q}}claims${{q}}:{{{}}},${{q}}client_contract_version${{q}}:${{q}}$util.base64Encode($client)${{q}},${{q}}body${{q}}:${{q}}$util.base64Encode($input.body)${{q}}}}\")\n",
        claims.join(",")
    ));
    // Quiet references (`$!x`) render an absent value as "", so "no secret configured" and
    // "no secret presented" never compare equal by both being null.
    out.push_str(&format!(
        "#set($secret = \"$!stageVariables.{}\")\n#set($presented = \"$!headers.get('{}')\")\n",
        contract_manifest::EDGE_SECRET_STAGE_VARIABLE,
        contract_manifest::EDGE_SECRET_HEADER,
    ));
    out.push_str("#if($secret != '' && $presented == $secret)\n");
    out.push_str(&format!(
        "{{\"StreamName\": \"${{stream_name}}\", \"Data\": \"$util.base64Encode($record)\", \"PartitionKey\": \"{partition_key}\"}}\n"
    ));
    out.push_str("#else\n");
    out.push_str("{\"StreamName\": \"${stream_name}\"}\n");
    out.push_str("#end\n");
    out
}

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
                "413": { "description": "Body over the contract's limit" }
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
                "responses": { "default": {
                    "statusCode": "200",
                    "responseParameters": {
                        "method.response.header.Access-Control-Allow-Origin": "'*'",
                        "method.response.header.Access-Control-Allow-Credentials": "'true'"
                    },
                    "responseTemplates": { "application/json": "\"Successfully added event\"" }
                } }
            }
        }
    });
    let mut paths = serde_json::Map::new();
    paths.insert(c.ingest.route.clone(), single);
    json!({
        "openapi": "3.0.1",
        "info": {
            "title": format!("{} ingest", c.name),
            "version": c.version.to_string(),
            "description": c.description.clone().unwrap_or_default(),
        },
        "paths": paths,
        "components": {
            "schemas": { model.clone(): request_model(c) },
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
