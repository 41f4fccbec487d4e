//! Personal data (#23): how each `pii` field is stored fits its type and place, the table
//! layout never depends on a value that is not stored as sent, and the data subject `forget`
//! erases by is a column that holds it.

use super::Checker;
use crate::diagnostic::Code;
use crate::ir::{Contract, EnrichmentSource, Pii, Type, WriteMode};
use crate::syntax::ast::{CaseDoc, ContractDoc, FieldDoc, PiiDoc, PiiHandling, ShapeDoc};
use crate::syntax::spans::escape_pointer_segment;

/// `pii:` as written, as the IR holds it.
pub fn handling(doc: Option<PiiDoc>) -> Pii {
    match doc {
        None | Some(PiiDoc::Flag(false)) => Pii::No,
        Some(PiiDoc::Flag(true) | PiiDoc::Handling(PiiHandling::Keep)) => Pii::Keep,
        Some(PiiDoc::Handling(PiiHandling::Mask)) => Pii::Mask,
        Some(PiiDoc::Handling(PiiHandling::Hash)) => Pii::Hash,
        Some(PiiDoc::Handling(PiiHandling::Drop)) => Pii::Drop,
    }
}

impl Checker<'_> {
    /// Checks every `pii` and `privacy` of a contract that checked so far; returns the
    /// subject column.
    pub(super) fn privacy(&mut self, doc: &ContractDoc, contract: &Contract) -> Option<String> {
        self.fields_pii(&doc.fields, "/fields");
        for (pointer, case) in variant_cases(doc) {
            self.fields_pii(&case.fields, &pointer);
        }
        for (i, enrichment) in contract.enrichments.iter().enumerate() {
            let from_token = matches!(
                enrichment.source,
                EnrichmentSource::JwtSub | EnrichmentSource::JwtClaim(_)
            );
            if enrichment.pii.is_personal() && !from_token {
                self.emit(
                    self.diag(
                        Code::UnsuitablePii,
                        format!(
                            "`{}` is filled from {}, which holds no personal data",
                            enrichment.name,
                            enrichment.source.spelling()
                        ),
                    )
                    .at(self.span(&format!("/enrich/{i}/pii")), "nothing to protect")
                    .help("only token claims (`jwt.sub`, `jwt.<claim>`) are about a person"),
                );
            }
        }
        self.layout_pii(contract);
        self.subject(doc, contract)
    }

    fn fields_pii(&mut self, fields: &[FieldDoc], pointer: &str) {
        for (i, field) in fields.iter().enumerate() {
            let pointer = format!("{pointer}/{i}");
            self.top_level_pii(field, &pointer);
            self.nested_pii(&field.shape, &pointer);
        }
    }

    fn top_level_pii(&mut self, field: &FieldDoc, pointer: &str) {
        let pii = handling(field.pii);
        if matches!(pii, Pii::Mask | Pii::Hash) && field.shape.type_name != "string" {
            self.emit(
                self.diag(
                    Code::UnsuitablePii,
                    format!(
                        "`{}` is {}: `pii: {}` stores strings only",
                        field.name,
                        field.shape.type_name,
                        pii.spelling()
                    ),
                )
                .at(
                    self.span(&format!("{pointer}/pii")),
                    "the stored value would be a string",
                )
                .help("`pii: drop` stores nothing; `pii: keep` stores the value as sent"),
            );
        }
    }

    /// Fields inside structs, lists and maps are stored as sent, or not personal: rewriting
    /// a value deep in a nested column is not something both engines can promise alike.
    fn nested_pii(&mut self, shape: &ShapeDoc, pointer: &str) {
        let elements = [
            ("items", &shape.items),
            ("keys", &shape.keys),
            ("values", &shape.values),
        ];
        for (key, element) in elements {
            if let Some(element) = element {
                self.nested_pii(&element.shape, &format!("{pointer}/{key}"));
            }
        }
        for (i, field) in shape.fields.iter().flatten().enumerate() {
            let pointer = format!("{pointer}/fields/{i}");
            let pii = handling(field.pii);
            if pii.rewrites() {
                self.emit(
                    self.diag(
                        Code::UnsuitablePii,
                        format!("`pii: {}` on a nested field (`{}`)", pii.spelling(), field.name),
                    )
                    .at(self.span(&format!("{pointer}/pii")), "applies to top-level fields only")
                    .help("move the field to the top level, or mark it `pii: keep`: hidden on the console and erased with its subject"),
                );
            }
            self.nested_pii(&field.shape, &pointer);
        }
    }

    /// Partition values sit in paths and metadata, the discriminator picks the variant, keys
    /// and `latest_by` compare rows: none of them may be a value that is not stored as sent.
    fn layout_pii(&mut self, contract: &Contract) {
        let pii_of = |name: &str| column_pii(contract, name);
        for (i, partition) in contract.table.partition.iter().enumerate() {
            let pii = pii_of(&partition.source);
            if pii.rewrites() {
                self.layout_error(
                    &partition.source,
                    pii,
                    &format!("/table/partition_by/{i}/field"),
                    "partition values are written into file paths and metadata",
                );
            }
        }
        for (i, sort) in contract.table.sort.iter().enumerate() {
            if pii_of(&sort.source) == Pii::Drop {
                self.layout_error(
                    &sort.source,
                    Pii::Drop,
                    &format!("/table/sort_by/{i}/field"),
                    "a dropped column is always null",
                );
            }
        }
        if let WriteMode::Upsert { key, latest_by } = &contract.table.write {
            for (i, name) in key.iter().enumerate() {
                let pii = pii_of(name);
                if matches!(pii, Pii::Mask | Pii::Drop) {
                    self.layout_error(
                        name,
                        pii,
                        &format!("/table/write/key/{i}"),
                        "different keys would become the same row",
                    );
                }
            }
            if let Some(name) = latest_by.as_deref().filter(|n| pii_of(n) == Pii::Drop) {
                self.layout_error(
                    name,
                    Pii::Drop,
                    "/table/write/latest_by",
                    "a dropped column is always null",
                );
            }
        }
        if let Some(dedup) = &contract.ingest.dedup {
            let pii = pii_of(&dedup.field);
            if pii.rewrites() {
                self.layout_error(
                    &dedup.field,
                    pii,
                    "/ingest/dedup/id",
                    "a retry is known by this value in the tables",
                );
            }
        }
        if let Some(variants) = &contract.variants {
            let pii = pii_of(&variants.discriminator);
            if pii.rewrites() {
                self.layout_error(
                    &variants.discriminator,
                    pii,
                    "/variants/discriminator",
                    "the discriminator picks each event's variant",
                );
            }
        }
    }

    fn layout_error(&mut self, name: &str, pii: Pii, pointer: &str, why: &str) {
        self.emit(
            self.diag(
                Code::PiiInTableLayout,
                format!(
                    "`{name}` is `pii: {}` but the table layout uses it",
                    pii.spelling()
                ),
            )
            .at(self.span(pointer), why)
            .help("lay the table out by another column, or store this one as sent (`pii: keep`)"),
        );
    }

    /// `privacy.subject`, or the `jwt.sub` enrichment: a string or uuid column stored as sent
    /// or hashed (a masked or dropped subject could not be found again).
    fn subject(&mut self, doc: &ContractDoc, contract: &Contract) -> Option<String> {
        let declared = doc.privacy.as_ref().and_then(|p| p.subject.as_deref());
        let Some(name) = declared else {
            let from_token = contract
                .enrichments
                .iter()
                .find(|e| e.source == EnrichmentSource::JwtSub)
                .map(|e| e.name.clone());
            if from_token.is_none() && has_personal_data(contract) {
                self.emit(
                    self.diag(Code::NoDataSubject, "personal data, but no column names the data subject")
                        .at(self.key_span("/contract"), "`forget --subject` finds none of this contract's rows")
                        .help("add an enrichment `from: jwt.sub`, or name the field with `privacy: { subject: <field> }`"),
                );
            }
            return from_token;
        };
        let pointer = "/privacy/subject";
        let field = contract
            .fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| (&f.ty, f.pii));
        let enrichment = contract
            .enrichments
            .iter()
            .find(|e| e.name == name)
            .map(|e| (&TOKEN_CLAIM_TYPE, e.pii));
        let problem = match field.or(enrichment) {
            None => Some("no top-level field or enrichment has this name".to_string()),
            Some((ty, _)) if !matches!(ty, Type::String | Type::Uuid) => Some(format!(
                "it is {}; a subject is a string or uuid",
                ty.with_article()
            )),
            Some((_, pii @ (Pii::Mask | Pii::Drop))) => Some(format!(
                "it is `pii: {}`: the stored value cannot be matched again",
                pii.spelling()
            )),
            Some(_) => None,
        };
        match problem {
            Some(problem) => {
                self.emit(
                    self.diag(
                        Code::UnsuitableSubject,
                        format!("`{name}` cannot name the data subject"),
                    )
                    .at(self.span(pointer), problem)
                    .help("name a string or uuid column stored as sent or hashed"),
                );
                None
            }
            None => Some(name.to_string()),
        }
    }
}

/// Enrichments from claims are strings.
const TOKEN_CLAIM_TYPE: Type = Type::String;

/// Each variant case that parses, with the JSON pointer of its fields.
fn variant_cases(doc: &ContractDoc) -> Vec<(String, CaseDoc)> {
    let cases = doc.variants.iter().flat_map(|v| v.cases.iter());
    cases
        // Cases that do not parse were reported by the variants check.
        .filter_map(|(value, case)| {
            let case = serde_json::from_value::<CaseDoc>(case.clone()).ok()?;
            let pointer = format!("/variants/cases/{}/fields", escape_pointer_segment(value));
            Some((pointer, case))
        })
        .collect()
}

fn column_pii(contract: &Contract, name: &str) -> Pii {
    let variant_fields = contract
        .variants
        .iter()
        .flat_map(|v| v.cases.iter().flat_map(|c| c.fields.iter()));
    let field = contract
        .fields
        .iter()
        .chain(variant_fields)
        .find(|f| f.name == name);
    let enrichment = contract.enrichments.iter().find(|e| e.name == name);
    field
        .map(|f| f.pii)
        .or(enrichment.map(|e| e.pii))
        .unwrap_or_default()
}

fn has_personal_data(contract: &Contract) -> bool {
    fn nested(ty: &Type) -> bool {
        match ty {
            Type::Struct(fields) => fields.iter().any(|f| f.pii.is_personal() || nested(&f.ty)),
            Type::List(element) => nested(&element.ty),
            Type::Map { value, .. } => nested(&value.ty),
            _ => false,
        }
    }
    let variant_fields = contract
        .variants
        .iter()
        .flat_map(|v| v.cases.iter().flat_map(|c| c.fields.iter()));
    contract
        .fields
        .iter()
        .chain(variant_fields)
        .any(|f| f.pii.is_personal() || nested(&f.ty))
        || contract.enrichments.iter().any(|e| e.pii.is_personal())
}
