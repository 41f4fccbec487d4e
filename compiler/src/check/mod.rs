//! Semantic checks: the contract as written (`syntax::ast`) → the validated IR.
//!
//! Every check reports through [`Checker::emit`] and carries on, so one run shows all errors.
//! A contract becomes IR only if it produced no error; warnings do not block. Cross-contract
//! checks (names, routes, tables unique) run on the whole set in [`check_set`].

mod alerts;
mod fields;
pub mod history;
mod names;
mod privacy;
mod rules;
mod table;
mod variants;

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{
    Auth, Contract, ContractSet, Enrichment, EnrichmentSource, Ingest, Issuer, SourceInfo,
    UnknownFields, Valid,
};
use crate::source::{SourceFile, Span};
use crate::syntax::schema::{closest, first_line};
use crate::syntax::{Parsed, spans::SpanIndex};

pub use names::variant_ident;

/// API Gateway refuses payloads over 10 MiB.
pub const MAX_BODY_LIMIT: u64 = 10 * 1024 * 1024;
pub const DEFAULT_MAX_BODY_BYTES: u64 = 1024 * 1024;
pub const MAX_BATCH_EVENTS_LIMIT: u64 = 100_000;
pub const DEFAULT_MAX_BATCH_EVENTS: u64 = 500;

/// Checks one parsed contract. Returns the IR when there is no error, with all diagnostics.
pub fn check_contract(parsed: &Parsed) -> (Option<Contract>, Vec<Diagnostic>) {
    let mut checker = Checker::new(&parsed.file, &parsed.spans);
    let contract = checker.contract(parsed);
    let diagnostics = checker.diagnostics;
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    (if has_errors { None } else { contract }, diagnostics)
}

/// The checked contracts of one build and where each came from (for cross-file diagnostics).
pub struct Checked {
    pub contract: Contract,
    pub file: Arc<SourceFile>,
    pub spans: Arc<SpanIndex>,
}

/// Cross-contract checks. Returns the validated set only if no error was found anywhere.
pub fn check_set(
    checked: Vec<Checked>,
    mut diagnostics: Vec<Diagnostic>,
    all_parsed: bool,
) -> (Option<Valid<ContractSet>>, Vec<Diagnostic>) {
    let mut names: BTreeMap<&str, &Checked> = BTreeMap::new();
    let mut routes: BTreeMap<&str, (&Checked, &str)> = BTreeMap::new();
    let mut tables: BTreeMap<(&str, &str), &Checked> = BTreeMap::new();
    for item in &checked {
        let c = &item.contract;
        let at = |pointer: &str| item.spans.value(pointer).unwrap_or(Span::new(0, 0));
        if let Some(first) = names.insert(&c.name, item) {
            diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateContract,
                    format!("contract `{}` is declared twice", c.name),
                )
                .in_file(&item.file)
                .at(at("/contract"), "declared again here")
                .note(format!(
                    "first declared in {}",
                    location(first, "/contract")
                ))
                .help("contract names must be unique: rename one"),
            );
        }
        let mut own_routes = vec![(c.ingest.route.as_str(), "/ingest/route")];
        if let Some(batch) = &c.ingest.batch_route {
            own_routes.push((batch.as_str(), "/ingest/batch_route"));
        }
        for (route, pointer) in own_routes {
            if let Some((first, first_pointer)) = routes.insert(route, (item, pointer)) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::DuplicateRoute,
                        format!("route `{route}` is used twice"),
                    )
                    .in_file(&item.file)
                    .at(at(pointer), "used again here")
                    .note(format!("first used in {}", location(first, first_pointer)))
                    .help("each route serves exactly one contract"),
                );
            }
        }
        if let Some(first) = tables.insert((&c.table.database, &c.table.name), item) {
            diagnostics.push(
                Diagnostic::new(
                    Code::DuplicateTable,
                    format!(
                        "table `{}.{}` is written by two contracts",
                        c.table.database, c.table.name
                    ),
                )
                .in_file(&item.file)
                .at(at("/table/name"), "written again here")
                .note(format!(
                    "first written by contract `{}` in {}",
                    first.contract.name,
                    location(first, "/table/name")
                ))
                .help("give each contract its own table"),
            );
        }
    }
    crate::diagnostic::sort(&mut diagnostics);
    let clean = all_parsed && !diagnostics.iter().any(Diagnostic::is_error);
    let set = clean.then(|| {
        let mut contracts: Vec<Contract> = checked.into_iter().map(|c| c.contract).collect();
        contracts.sort_by(|a, b| a.name.cmp(&b.name));
        Valid::new_checked(ContractSet { contracts })
    });
    (set, diagnostics)
}

impl Checked {
    /// The span of the value at `pointer` (first line only for collections).
    pub(crate) fn span(&self, pointer: &str) -> Span {
        value_span(&self.file, &self.spans, pointer)
    }

    /// The span of the key naming `pointer`, or its value when it has no key.
    pub(crate) fn key_span(&self, pointer: &str) -> Span {
        key_span(&self.file, &self.spans, pointer)
    }

    /// A diagnostic in this file, to finish with `.at(..)`.
    pub(crate) fn diag(&self, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, message).in_file(&self.file)
    }
}

fn value_span(file: &SourceFile, spans: &SpanIndex, pointer: &str) -> Span {
    first_line(file, spans.value(pointer).unwrap_or(Span::new(0, 0)))
}

fn key_span(file: &SourceFile, spans: &SpanIndex, pointer: &str) -> Span {
    first_line(file, spans.key_or_value(pointer).unwrap_or(Span::new(0, 0)))
}

/// `file:line:col` of the value at `pointer` in a checked contract's file.
pub(crate) fn location(item: &Checked, pointer: &str) -> String {
    let span = item.spans.value(pointer).unwrap_or(Span::new(0, 0));
    let at = item.file.line_col(span.start);
    format!("{}:{}:{}", item.file.name, at.line, at.column)
}

/// Walks one contract, collecting diagnostics.
pub(crate) struct Checker<'a> {
    pub file: &'a Arc<SourceFile>,
    pub spans: &'a SpanIndex,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Checker<'a> {
    fn new(file: &'a Arc<SourceFile>, spans: &'a SpanIndex) -> Self {
        Checker {
            file,
            spans,
            diagnostics: Vec::new(),
        }
    }

    /// The span of the value at `pointer` (first line only for collections).
    pub fn span(&self, pointer: &str) -> Span {
        value_span(self.file, self.spans, pointer)
    }

    /// The span of the key naming `pointer`, or its value when it has no key.
    pub fn key_span(&self, pointer: &str) -> Span {
        key_span(self.file, self.spans, pointer)
    }

    /// A diagnostic in this file, to finish with `.at(..)` and pass to [`Checker::emit`].
    pub fn diag(&self, code: Code, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(code, message).in_file(self.file)
    }

    pub fn emit(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn contract(&mut self, parsed: &Parsed) -> Option<Contract> {
        let doc = &parsed.doc;
        self.identifier(&doc.contract, "/contract", "contract name");
        let version = match semver::Version::parse(&doc.version) {
            Ok(version) => Some(version),
            Err(error) => {
                self.emit(
                    self.diag(
                        Code::InvalidVersion,
                        format!("`{}` is not a semantic version", doc.version),
                    )
                    .at(self.span("/version"), error.to_string())
                    .help("write MAJOR.MINOR.PATCH, e.g. 1.0.0"),
                );
                None
            }
        };

        let mut ids = fields::IdRegistry::default();
        let fields = self.fields(&doc.fields, "/fields", &mut ids);
        let enrichments = self.enrichments(doc, &fields, &mut ids);
        let variants = match &doc.variants {
            Some(v) => self.variants(v, &fields, &enrichments, &mut ids).map(Some),
            None => Some(None),
        };
        let (reserved_ids, reserved_names) = self.reserved(doc, &ids);
        let ingest = self.ingest(doc);

        let variants = variants?;
        let mut contract = Contract {
            name: doc.contract.clone(),
            version: version?,
            owner: doc.owner.clone(),
            description: doc.description.clone(),
            tags: doc.tags.clone(),
            fields,
            variants,
            reserved_ids,
            reserved_names,
            table: crate::ir::Table {
                database: String::new(),
                name: String::new(),
                partition: Vec::new(),
                sort: Vec::new(),
                write: crate::ir::WriteMode::Append,
                properties: BTreeMap::new(),
            },
            ingest: ingest?,
            enrichments,
            source: SourceInfo {
                path: parsed.file.name.clone(),
                fingerprint: hex(&Sha256::digest(parsed.file.text.as_bytes())),
            },
            declared_versions: self.declared_versions(doc),
            history: None,
            subject: None,
            alerts: Vec::new(),
        };
        // The table refers to columns from everywhere above, so it is checked last.
        contract.table = self.table(&doc.table, &contract)?;
        contract.ingest.dedup = doc
            .ingest
            .dedup
            .as_ref()
            .and_then(|dedup| self.dedup(dedup, &contract.fields));
        contract.subject = self.privacy(doc, &contract);
        contract.alerts = self.alerts(doc);
        Some(contract)
    }

    /// `versions` as written: the versions parse; the steps are resolved when the history is
    /// linked (`history::link`), against the previous release.
    fn declared_versions(
        &mut self,
        doc: &crate::syntax::ast::ContractDoc,
    ) -> Option<crate::ir::DeclaredVersions> {
        let versions = doc.versions.as_ref()?;
        let mut version = |text: &Option<String>, pointer: &str| {
            let text = text.as_ref()?;
            semver::Version::parse(text)
                .map_err(|error| {
                    self.emit(
                        self.diag(
                            Code::InvalidVersion,
                            format!("`{text}` is not a semantic version"),
                        )
                        .at(self.span(pointer), error.to_string())
                        .help("write MAJOR.MINOR.PATCH, e.g. 1.2.0"),
                    )
                })
                .ok()
        };
        Some(crate::ir::DeclaredVersions {
            default: version(&versions.default, "/versions/default"),
            retire_before: version(&versions.retire_before, "/versions/retire_before"),
            migration: versions
                .migration
                .iter()
                .enumerate()
                .map(|(i, step)| (step.clone(), format!("/versions/migration/{i}")))
                .collect(),
        })
    }

    /// `ingest.dedup`: the id is a top-level `uuid` field (what the clients generate), the
    /// window between a minute and a week (the runtime holds every id of the window).
    fn dedup(
        &mut self,
        dedup: &crate::syntax::ast::DedupDoc,
        fields: &[crate::ir::Field],
    ) -> Option<crate::ir::Dedup> {
        const WINDOW: std::ops::RangeInclusive<u64> = 60..=7 * 24 * 3600;
        let field = fields.iter().find(|f| f.name == dedup.id);
        if !field.is_some_and(|f| f.ty == crate::ir::Type::Uuid) {
            let label = match field {
                Some(_) => "not a `uuid` field",
                None => "no top-level field has this name",
            };
            self.emit(
                self.diag(
                    Code::UnsuitableDedupId,
                    format!("`{}` cannot identify events for deduplication", dedup.id),
                )
                .at(self.span("/ingest/dedup/id"), label)
                .help("name a top-level field of type uuid: the generated clients fill it with a UUIDv7 when the event is created"),
            );
        }
        let window = self.duration(&dedup.window, false, "/ingest/dedup/window");
        if let Some((_, window)) = window
            && !WINDOW.contains(&window.as_secs())
        {
            self.emit(
                self.diag(
                    Code::DedupWindowOutOfRange,
                    format!("deduplication window `{}` is out of range", dedup.window),
                )
                .at(self.span("/ingest/dedup/window"), "must be 1m..=7d")
                .help("the runtime keeps every id of the window: 24h covers a client's retries and its offline queue"),
            );
            return None;
        }
        Some(crate::ir::Dedup {
            field: field?.name.clone(),
            window_seconds: window?.1.as_secs(),
        })
    }

    fn reserved(
        &mut self,
        doc: &crate::syntax::ast::ContractDoc,
        ids: &fields::IdRegistry,
    ) -> (Vec<u32>, Vec<String>) {
        let mut reserved_ids = Vec::new();
        for (i, &id) in doc.reserved.ids.iter().enumerate() {
            let pointer = format!("/reserved/ids/{i}");
            let Some(id) = self.field_id(id, &pointer) else {
                continue;
            };
            if reserved_ids.contains(&id) {
                self.emit(
                    self.diag(
                        Code::DuplicateReserved,
                        format!("id {id} is reserved twice"),
                    )
                    .at(self.span(&pointer), "listed again here"),
                );
                continue;
            }
            if let Some(user) = ids.get(id) {
                self.emit(
                    self.diag(
                        Code::ReservedIdUsed,
                        format!("id {id} is reserved but used by `{}`", user.name),
                    )
                    .at(
                        self.span(&format!("{}/id", user.pointer)),
                        "uses a reserved id",
                    )
                    .also(self.span(&pointer), "reserved here")
                    .help("ids of removed fields are never reused: give the field a new id"),
                );
            }
            reserved_ids.push(id);
        }
        let mut reserved_names: Vec<String> = Vec::new();
        for (i, name) in doc.reserved.names.iter().enumerate() {
            let pointer = format!("/reserved/names/{i}");
            if reserved_names.contains(name) {
                self.emit(
                    self.diag(
                        Code::DuplicateReserved,
                        format!("name `{name}` is reserved twice"),
                    )
                    .at(self.span(&pointer), "listed again here"),
                );
                continue;
            }
            if let Some(user) = ids.by_name(name) {
                self.emit(
                    self.diag(Code::ReservedNameUsed, format!("name `{name}` is reserved but used by a field"))
                        .at(self.span(&format!("{}/name", user.pointer)), "uses a reserved name")
                        .also(self.span(&pointer), "reserved here")
                        .help("a removed field's name keeps its old meaning for readers of old data: choose another name"),
                );
            }
            reserved_names.push(name.clone());
        }
        reserved_ids.sort_unstable();
        reserved_names.sort();
        (reserved_ids, reserved_names)
    }

    fn ingest(&mut self, doc: &crate::syntax::ast::ContractDoc) -> Option<Ingest> {
        let ingest = &doc.ingest;
        let before = self.error_count();
        self.route(&ingest.route, "/ingest/route");
        if let Some(batch) = &ingest.batch_route {
            self.route(batch, "/ingest/batch_route");
            if batch == &ingest.route {
                self.emit(
                    self.diag(
                        Code::DuplicateRoute,
                        format!("route `{batch}` is both the single and the batch route"),
                    )
                    .at(self.span("/ingest/batch_route"), "same as `route`")
                    .help("the batch route needs its own path, e.g. /prod/put-records"),
                );
            }
        }
        let max_body_bytes = match ingest.max_body_bytes {
            None => DEFAULT_MAX_BODY_BYTES,
            Some(n) if n >= 1 && n as u64 <= MAX_BODY_LIMIT => n as u64,
            Some(n) => {
                self.emit(
                    self.diag(
                        Code::BodyLimitOutOfRange,
                        format!("max_body_bytes {n} is out of range"),
                    )
                    .at(self.span("/ingest/max_body_bytes"), "must be 1..=10485760")
                    .help("API Gateway refuses bodies over 10 MiB"),
                );
                DEFAULT_MAX_BODY_BYTES
            }
        };
        let max_batch_events = match ingest.max_batch_events {
            None => DEFAULT_MAX_BATCH_EVENTS,
            Some(n) if (1..=MAX_BATCH_EVENTS_LIMIT as i64).contains(&n) => n as u64,
            Some(n) => {
                self.emit(
                    self.diag(
                        Code::BatchLimitOutOfRange,
                        format!("max_batch_events {n} is out of range"),
                    )
                    .at(self.span("/ingest/max_batch_events"), "must be 1..=100000")
                    .help("a batch answer lists every event's verdict: keep batches small"),
                );
                DEFAULT_MAX_BATCH_EVENTS
            }
        };
        let unknown_fields = match ingest.unknown_fields.as_deref() {
            Some("quarantine") => UnknownFields::Quarantine,
            Some("warn") => UnknownFields::Warn,
            Some("drop") => UnknownFields::Drop,
            _ => UnknownFields::Reject,
        };
        let auth = &ingest.auth;
        let issuer = if auth.issuer == "dev" {
            Issuer::Dev
        } else {
            self.url(&auth.issuer, "/ingest/auth/issuer", "issuer");
            Issuer::Url(auth.issuer.clone())
        };
        if let Some(jwks) = &auth.jwks_url {
            self.url(jwks, "/ingest/auth/jwks_url", "JWKS URL");
        }
        if auth.audience.trim().is_empty() {
            self.emit(
                self.diag(Code::EmptyAudience, "the audience is empty")
                    .at(self.span("/ingest/auth/audience"), "no token would match")
                    .help("the reference uses `gamebackend`"),
            );
        }
        if auth.scopes.is_empty() {
            self.emit(
                self.diag(Code::EmptyScopes, "no scope is allowed")
                    .at(
                        self.span("/ingest/auth/scopes"),
                        "every request would be refused (403)",
                    )
                    .help("list the scopes a token may carry, e.g. [guest, authenticated]"),
            );
        }
        for (i, scope) in auth.scopes.iter().enumerate() {
            if scope.is_empty() || scope.chars().any(|c| c.is_whitespace() || c.is_control()) {
                self.emit(
                    self.diag(Code::EmptyScopes, format!("invalid scope {scope:?}"))
                        .at(self.span(&format!("/ingest/auth/scopes/{i}")), "scopes are single non-empty words")
                        .help("a token's `scope` claim is a space-separated list, so a scope cannot contain spaces"),
                );
            }
        }
        (self.error_count() == before).then(|| Ingest {
            route: ingest.route.clone(),
            batch_route: ingest.batch_route.clone(),
            max_body_bytes,
            max_batch_events,
            unknown_fields,
            // Checked with the fields, once they are known (`dedup`).
            dedup: None,
            auth: Auth {
                issuer,
                jwks_url: auth.jwks_url.clone(),
                audience: auth.audience.clone(),
                scopes: auth.scopes.clone(),
            },
        })
    }

    fn route(&mut self, route: &str, pointer: &str) {
        let valid = route.starts_with('/')
            && route.len() > 1
            && !route.ends_with('/')
            && route[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !valid {
            self.emit(
                self.diag(Code::InvalidRoute, format!("invalid route `{route}`"))
                    .at(self.span(pointer), "not a plain absolute path")
                    .help(
                        "use segments of letters, digits, '-', '_' or '.', e.g. /prod/put-record",
                    ),
            );
        }
    }

    fn url(&mut self, url: &str, pointer: &str, what: &str) {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let problem = match rest {
            None => Some("must start with https:// (or http:// for local issuers), or be `dev`"),
            Some(r) if r.is_empty() || r.starts_with('/') => Some("has no host"),
            Some(_) if url.ends_with('/') => {
                Some("ends with `/`: issuers are compared exactly, without a trailing slash")
            }
            Some(r)
                if r.chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "\"'<>\\".contains(c)) =>
            {
                Some("contains characters a URL cannot")
            }
            Some(_) => None,
        };
        if let Some(problem) = problem {
            self.emit(
                self.diag(Code::InvalidIssuer, format!("invalid {what} `{url}`"))
                    .at(self.span(pointer), problem)
                    .help(
                        "e.g. https://id.example.com or `dev` for the built-in identity provider",
                    ),
            );
        }
    }

    fn enrichments(
        &mut self,
        doc: &crate::syntax::ast::ContractDoc,
        fields: &[crate::ir::Field],
        ids: &mut fields::IdRegistry,
    ) -> Vec<Enrichment> {
        const SOURCES: &[&str] = &[
            "ingest_time",
            "contract_version",
            "request_id",
            "jwt.sub",
            "client_contract_version",
        ];
        let mut out: Vec<Enrichment> = Vec::new();
        for (i, e) in doc.enrich.iter().enumerate() {
            let pointer = format!("/enrich/{i}");
            let name_ok = self.identifier(&e.name, &format!("{pointer}/name"), "column name");
            let id = self.field_id(e.id, &format!("{pointer}/id"));
            if let Some(field) = fields.iter().find(|f| f.name == e.name) {
                self.emit(
                    self.diag(
                        Code::EnrichmentCollision,
                        format!(
                            "enrichment `{}` has the name of field `{}`",
                            e.name, field.name
                        ),
                    )
                    .at(
                        self.span(&format!("{pointer}/name")),
                        "clashes with a field",
                    )
                    .help("producers never send enrichment columns: give it its own name"),
                );
                continue;
            }
            if out.iter().any(|o| o.name == e.name) {
                self.emit(
                    self.diag(
                        Code::DuplicateName,
                        format!("enrichment column `{}` is defined twice", e.name),
                    )
                    .at(self.span(&format!("{pointer}/name")), "defined again here"),
                );
                continue;
            }
            let source = match e.from.as_str() {
                "ingest_time" => Some(EnrichmentSource::IngestTime),
                "contract_version" => Some(EnrichmentSource::ContractVersion),
                "request_id" => Some(EnrichmentSource::RequestId),
                "jwt.sub" => Some(EnrichmentSource::JwtSub),
                "client_contract_version" => Some(EnrichmentSource::ClientContractVersion),
                other => match other.strip_prefix("jwt.") {
                    Some(claim) if names::is_claim_name(claim) => {
                        Some(EnrichmentSource::JwtClaim(claim.to_string()))
                    }
                    _ => {
                        let mut d = self
                            .diag(
                                Code::UnknownEnrichmentSource,
                                format!("unknown enrichment source `{other}`"),
                            )
                            .at(
                                self.span(&format!("{pointer}/from")),
                                "the runtime cannot fill this",
                            );
                        d = match closest(other, SOURCES.iter().copied()) {
                            Some(best) => d.help(format!("did you mean `{best}`?")),
                            None => d.help("sources are ingest_time, contract_version, request_id, jwt.sub, jwt.<claim> and client_contract_version"),
                        };
                        self.emit(d);
                        None
                    }
                },
            };
            if let (true, Some(id), Some(source)) = (name_ok, id, source) {
                ids.register(id, &e.name, &pointer, self);
                out.push(Enrichment {
                    name: e.name.clone(),
                    id,
                    source,
                    description: e.description.clone(),
                    pii: privacy::handling(e.pii),
                });
            }
        }
        out
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
