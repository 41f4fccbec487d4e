//! Markdown documentation per contract: fields, types, ids, rules, the table, and examples of
//! valid and invalid events (from the labelled corpus, so the examples are tested).

use super::GeneratedFile;
use crate::ir::{
    Contract, ContractSet, EnrichmentSource, Field, Issuer, Literal, Pii, Rule, RuleKind, Type,
    Valid, WriteMode,
};
use contract_corpus as corpus;

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files: Vec<GeneratedFile> = set
        .contracts
        .iter()
        .map(|c| GeneratedFile::new(format!("{}/README.md", c.name), page(c)))
        .collect();
    files.push(GeneratedFile::new("README.md", index(set)));
    files
}

fn index(set: &Valid<ContractSet>) -> String {
    let mut out = super::header("<!--", "contracts/").trim_end().to_string() + " -->\n\n";
    out.push_str("# Generated artefacts\n\nEverything here is written by `contractc build` from `contracts/`; a test fails when it is stale.\n\n");
    out.push_str("| contract | version | table | route | artefacts |\n|---|---|---|---|---|\n");
    for c in &set.contracts {
        out.push_str(&format!(
            "| [{name}]({name}/README.md) | {} | `{}.{}` | `POST {}` | [Iceberg]({name}/iceberg/), [Glue]({name}/glue/), [API Gateway]({name}/apigateway/), [Athena]({name}/athena/), [validator](validators/src/{name}.rs) |\n",
            c.version,
            c.table.database,
            c.table.name,
            c.ingest.route,
            name = c.name
        ));
    }
    out
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn type_text(ty: &Type) -> String {
    match ty {
        Type::Timestamp { format } => format!("timestamp (`{}`)", format.pattern),
        Type::List(e) => format!("list<{}>", type_text(&e.ty)),
        Type::Map { key, value } => {
            format!("map<{}, {}>", type_text(&key.ty), type_text(&value.ty))
        }
        Type::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| f.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.name(),
    }
}

pub fn rule_text(rule: &Rule) -> String {
    let body = match &rule.kind {
        RuleKind::Min(b) => format!("≥ {b}"),
        RuleKind::Max(b) => format!("≤ {b}"),
        RuleKind::MinLength(n) => format!("length ≥ {n}"),
        RuleKind::MaxLength(n) => format!("length ≤ {n}"),
        RuleKind::Pattern(p) => format!("matches `{p}`"),
        RuleKind::OneOf(values) => format!(
            "one of {}",
            values
                .iter()
                .map(|v| match v {
                    Literal::String(s) => format!("`{s}`"),
                    Literal::Int(i) => format!("`{i}`"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        RuleKind::NotBefore(t) => format!(
            "not before ingest time {} − {}s skew",
            offset(t.offset_seconds),
            t.skew_seconds
        ),
        RuleKind::NotAfter(t) => format!(
            "not after ingest time {} + {}s skew",
            offset(t.offset_seconds),
            t.skew_seconds
        ),
    };
    match rule.policy {
        crate::ir::Policy::Reject => body,
        other => format!("{body} ({})", other.as_str()),
    }
}

fn offset(seconds: i64) -> String {
    if seconds == 0 {
        String::new()
    } else if seconds > 0 {
        format!("+ {seconds}s")
    } else {
        format!("− {}s", -seconds)
    }
}

/// `**PII**` for personal data stored as sent, `**PII: hash**` (`mask`, `drop`) otherwise.
fn pii_mark(pii: Pii) -> String {
    match pii {
        Pii::No => String::new(),
        Pii::Keep => " **PII**".to_string(),
        other => format!(" **PII: {}**", other.spelling()),
    }
}

fn field_rows(fields: &[Field], prefix: &str, out: &mut String) {
    for f in fields {
        let rules: Vec<String> = f.rules.iter().map(rule_text).collect();
        out.push_str(&format!(
            "| `{prefix}{}` | {} | {} | {} | {}{} | {} |\n",
            f.name,
            f.id,
            escape(&type_text(&f.ty)),
            if f.required { "yes" } else { "no" },
            escape(&rules.join("; ")),
            pii_mark(f.pii),
            escape(f.description.as_deref().unwrap_or(""))
        ));
        if let Type::Struct(members) = &f.ty {
            field_rows(members, &format!("{prefix}{}.", f.name), out);
        }
    }
}

/// One contract's page (also baked into its manifest as `docs`).
pub(crate) fn page(c: &Contract) -> String {
    let mut out = super::header("<!--", &c.source.path).trim_end().to_string() + " -->\n\n";
    out.push_str(&format!("# `{}` {}\n\n", c.name, c.version));
    out.push_str(&format!("Owner: {}", c.owner));
    if !c.tags.is_empty() {
        out.push_str(&format!(" · tags: {}", c.tags.join(", ")));
    }
    out.push_str("\n\n");
    if let Some(d) = &c.description {
        out.push_str(&format!("{d}\n\n"));
    }
    out.push_str(&format!(
        "Events are posted to `POST {}`{} (at most {} bytes), authenticated by a JWT from {} with audience `{}` and one of the scopes {}. They land in the Iceberg table `{}.{}`; refused and quarantined events land in `{}.{}_quarantine` with their violations.\n\n",
        c.ingest.route,
        c.ingest.batch_route.as_ref().map(|b| format!(" (batches: `POST {b}`)")).unwrap_or_default(),
        c.ingest.max_body_bytes,
        match &c.ingest.auth.issuer {
            Issuer::Dev => "the runtime's built-in identity provider".to_string(),
            Issuer::Url(u) => format!("`{u}`"),
        },
        c.ingest.auth.audience,
        c.ingest.auth.scopes.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        c.table.database,
        c.table.name,
        c.table.database,
        c.table.name,
    ));

    fields_section(c, &mut out);
    variants_section(c, &mut out);
    enrichment_section(c, &mut out);
    table_section(c, &mut out);
    examples_section(c, &mut out);
    out
}

/// The field table.
fn fields_section(c: &Contract, out: &mut String) {
    out.push_str("## Fields\n\n| field | id | type | required | rules | description |\n|---|---|---|---|---|---|\n");
    field_rows(&c.fields, "", out);
    out.push('\n');
}

/// One subsection per variant: its requirements, extra rules and payload fields.
fn variants_section(c: &Contract, out: &mut String) {
    let Some(variants) = &c.variants else {
        return;
    };
    out.push_str(&format!(
        "## Variants (by `{}`)\n\n",
        variants.discriminator
    ));
    for case in &variants.cases {
        out.push_str(&format!("### `{}`\n\n", case.value));
        if let Some(d) = &case.description {
            out.push_str(&format!("{d}\n\n"));
        }
        if case.fields.is_empty() && case.require.is_empty() && case.rules.is_empty() {
            out.push_str("No payload fields.\n\n");
            continue;
        }
        if !case.require.is_empty() {
            out.push_str(&format!(
                "Requires: {}.\n\n",
                case.require
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        for (name, rules) in &case.rules {
            out.push_str(&format!(
                "Extra rules on `{name}`: {}.\n\n",
                rules.iter().map(rule_text).collect::<Vec<_>>().join("; ")
            ));
        }
        if !case.fields.is_empty() {
            out.push_str("| field | id | type | required | rules | description |\n|---|---|---|---|---|---|\n");
            field_rows(&case.fields, "", out);
            out.push('\n');
        }
    }
}

/// The columns the runtime fills.
fn enrichment_section(c: &Contract, out: &mut String) {
    if c.enrichments.is_empty() {
        return;
    }
    out.push_str("## Enrichment\n\nColumns the runtime fills (producers never send them):\n\n| column | id | from |\n|---|---|---|\n");
    for e in &c.enrichments {
        let from = match &e.source {
            EnrichmentSource::IngestTime => "ingest time".to_string(),
            EnrichmentSource::ContractVersion => "contract version".to_string(),
            EnrichmentSource::RequestId => "request id".to_string(),
            EnrichmentSource::JwtSub => "JWT `sub`".to_string(),
            EnrichmentSource::JwtClaim(claim) => format!("JWT `{claim}`"),
            EnrichmentSource::ClientContractVersion => {
                "the client's `X-Contract-Version` header".to_string()
            }
        };
        out.push_str(&format!("| `{}` | {} | {from} |\n", e.name, e.id));
    }
    out.push('\n');
}

/// The Iceberg table: partitioning, order, write mode, reserved ids and names.
fn table_section(c: &Contract, out: &mut String) {
    out.push_str("## Table\n\n");
    let partition: Vec<String> = c
        .table
        .partition
        .iter()
        .map(|p| format!("{}({})", p.transform.iceberg_name(), p.source))
        .collect();
    out.push_str(&format!(
        "- partitioned by: {}\n",
        if partition.is_empty() {
            "nothing".to_string()
        } else {
            partition.join(", ")
        }
    ));
    let sort: Vec<String> = c
        .table
        .sort
        .iter()
        .map(|s| format!("{} {}", s.source, if s.descending { "desc" } else { "asc" }))
        .collect();
    if !sort.is_empty() {
        out.push_str(&format!("- sorted by: {}\n", sort.join(", ")));
    }
    match &c.table.write {
        WriteMode::Append => out.push_str("- write mode: append\n"),
        WriteMode::Upsert { key, latest_by } => out.push_str(&format!(
            "- write mode: upsert on ({}), keeping the latest by {}\n",
            key.join(", "),
            latest_by
                .as_deref()
                .map_or("arrival".to_string(), |l| format!("`{l}`"))
        )),
    }
    if !c.reserved_ids.is_empty() || !c.reserved_names.is_empty() {
        out.push_str(&format!(
            "- reserved (never reuse): ids {}; names {}\n",
            c.reserved_ids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            c.reserved_names.join(", ")
        ));
    }
}

/// Examples from the labelled corpus: a few valid events, one invalid per violation code.
fn examples_section(c: &Contract, out: &mut String) {
    out.push_str("\n## Examples\n\nJudged as if received at 2024-02-22T12:00:00Z.\n\n");
    let cases = corpus::cases(&c.manifest());
    for case in cases.iter().filter(|c| c.is_valid()).take(3) {
        out.push_str(&format!(
            "Valid ({}):\n\n```json\n{}\n```\n\n",
            case.name, case.body
        ));
    }
    out.push_str("Invalid:\n\n| change | body | violations |\n|---|---|---|\n");
    let mut shown = std::collections::BTreeSet::new();
    for case in cases.iter().filter(|c| !c.is_valid()) {
        // One example per violation code keeps the page short.
        if shown.insert(case.codes.clone()) {
            out.push_str(&format!(
                "| {} | `{}` | {} |\n",
                escape(&case.name),
                escape(&case.body),
                case.codes.join(", ")
            ));
        }
    }
}
