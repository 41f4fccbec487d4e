//! `contractc diff`: what a contract change breaks, for producers already shipped and for the
//! Iceberg table and its readers.
//!
//! Fields are matched by **id**, not name (ids are the stable identity; a new name on the same
//! id is a rename). Every change gets one or more classes with a reason:
//!
//! - **safe**: nothing shipped breaks; deploy in any order;
//! - **breaks producers**: some event accepted before is now refused or quarantined;
//! - **breaks table**: the table cannot evolve compatibly, or readers of existing data break;
//! - **needs migration**: compatible, but the table must change first (or the change must roll
//!   out in a given order).
//!
//! A breaking change needs a major version bump; [`Report::version_errors`] says when it lacks one.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ir::{
    Contract, ContractSet, Element, Field, Issuer, Literal, Policy, Rule, RuleKind, TimeBound,
    Type, UnknownFields,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Safe,
    BreaksProducers,
    BreaksTable,
    NeedsMigration,
    /// Breaks what the old version's producers send, but the new version keeps the old one as
    /// a release and its migration covers the change (`check` refuses one that does not).
    Migrated,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Safe => "safe",
            Class::BreaksProducers => "breaks producers",
            Class::BreaksTable => "breaks table",
            Class::NeedsMigration => "needs migration",
            Class::Migrated => "covered by migration",
        }
    }

    pub fn is_breaking(self) -> bool {
        matches!(self, Class::BreaksProducers | Class::BreaksTable)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub contract: String,
    /// What changed, e.g. `field updated_at (id 3)` or `table partitioning`.
    pub subject: String,
    pub description: String,
    pub classes: BTreeSet<Class>,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub changes: Vec<Change>,
    /// Per contract: (old version, new version) when both exist.
    pub versions: BTreeMap<String, (String, String)>,
    pub version_errors: Vec<String>,
}

impl Report {
    pub fn is_breaking(&self) -> bool {
        self.changes
            .iter()
            .any(|c| c.classes.iter().any(|k| k.is_breaking()))
    }
}

struct Builder<'a> {
    contract: &'a str,
    changes: Vec<Change>,
    /// The new version keeps the old one as a supported release (#20): what a migration can
    /// cover is covered, or `check` would have refused the new version.
    migrated_from: Option<String>,
}

impl Builder<'_> {
    fn push(
        &mut self,
        subject: impl Into<String>,
        description: impl Into<String>,
        classes: &[Class],
        reason: impl Into<String>,
    ) {
        self.changes.push(Change {
            contract: self.contract.to_string(),
            subject: subject.into(),
            description: description.into(),
            classes: classes.iter().copied().collect(),
            reason: reason.into(),
        });
    }

    /// A change old producers' events survive when a migration covers it (a field added as
    /// required, removed or renamed, a variant removed).
    fn push_migratable(
        &mut self,
        subject: impl Into<String>,
        description: impl Into<String>,
        classes: &[Class],
        reason: impl Into<String>,
    ) {
        let Some(old) = self.migrated_from.clone() else {
            return self.push(subject, description, classes, reason);
        };
        let classes: Vec<Class> = classes
            .iter()
            .map(|c| match c {
                Class::BreaksProducers => Class::Migrated,
                other => *other,
            })
            .collect();
        let reason = format!(
            "{}; covered: clients of {old} are judged by its released validator and their events upcast by the migration",
            reason.into()
        );
        self.push(subject, description, &classes, reason);
    }
}

/// Each contract's last release, for `diff --last-release` (contracts without one are left out).
pub fn last_releases(set: &ContractSet) -> ContractSet {
    ContractSet {
        contracts: set
            .contracts
            .iter()
            .filter_map(|c| c.history.as_ref()?.releases.last())
            .map(|r| r.contract.clone())
            .collect(),
    }
}

/// Compares two sets of contracts (by contract name).
pub fn diff(old: &ContractSet, new: &ContractSet) -> Report {
    let mut report = Report::default();
    let old_by: BTreeMap<&str, &Contract> =
        old.contracts.iter().map(|c| (c.name.as_str(), c)).collect();
    let new_by: BTreeMap<&str, &Contract> =
        new.contracts.iter().map(|c| (c.name.as_str(), c)).collect();
    for (name, o) in &old_by {
        match new_by.get(name) {
            None => report.changes.push(Change {
                contract: name.to_string(),
                subject: "contract".into(),
                description: format!("contract `{name}` removed"),
                classes: [Class::BreaksProducers, Class::BreaksTable]
                    .into_iter()
                    .collect(),
                reason: "its route stops accepting events and its table stops receiving data"
                    .into(),
            }),
            Some(n) => {
                let migrated_from = n
                    .history
                    .iter()
                    .flat_map(|h| &h.releases)
                    .find(|r| r.contract.version == o.version && !r.retired)
                    .map(|r| r.contract.version.to_string());
                let mut b = Builder {
                    contract: name,
                    changes: Vec::new(),
                    migrated_from,
                };
                compare(o, n, &mut b);
                report.changes.extend(b.changes);
                report.versions.insert(
                    name.to_string(),
                    (o.version.to_string(), n.version.to_string()),
                );
                let breaking = report
                    .changes
                    .iter()
                    .any(|c| c.contract == *name && c.classes.iter().any(|k| k.is_breaking()));
                let changed = report.changes.iter().any(|c| c.contract == *name);
                if n.version < o.version {
                    report.version_errors.push(format!(
                        "{name}: version went backwards ({} → {})",
                        o.version, n.version
                    ));
                } else if breaking && n.version.major <= o.version.major {
                    report.version_errors.push(format!(
                        "{name}: breaking changes need a major version bump ({} → {} is not one; use {}.0.0)",
                        o.version,
                        n.version,
                        o.version.major + 1
                    ));
                } else if changed && n.version == o.version {
                    report.version_errors.push(format!(
                        "{name}: the contract changed but its version did not ({})",
                        o.version
                    ));
                }
            }
        }
    }
    for (name, _) in new_by.iter().filter(|(n, _)| !old_by.contains_key(*n)) {
        report.changes.push(Change {
            contract: name.to_string(),
            subject: "contract".into(),
            description: format!("contract `{name}` added"),
            classes: [Class::Safe].into_iter().collect(),
            reason: "a new route and new tables; nothing existing changes".into(),
        });
    }
    report
}

/// Every id-bearing node of a contract: fields (nested too), elements, enrichments.
#[derive(Debug, Clone)]
struct Node {
    path: String,
    name: String,
    ty: Type,
    required: bool,
    rules: Vec<Rule>,
    /// `envelope`, `variant X`, `element`, `enrichment`.
    place: String,
}

fn collect(c: &Contract) -> BTreeMap<u32, Node> {
    let mut out = BTreeMap::new();
    for f in &c.fields {
        field_nodes(f, "", "envelope", &mut out);
    }
    if let Some(v) = &c.variants {
        for case in &v.cases {
            for f in &case.fields {
                // Shared payload fields appear in several cases with one definition.
                if !out.contains_key(&f.id) {
                    field_nodes(f, "", &format!("variant {:?}", case.value), &mut out);
                }
            }
        }
    }
    for e in &c.enrichments {
        out.insert(
            e.id,
            Node {
                path: e.name.clone(),
                name: e.name.clone(),
                ty: e.ty(),
                required: false,
                rules: vec![],
                place: "enrichment".into(),
            },
        );
    }
    out
}

fn field_nodes(f: &Field, prefix: &str, place: &str, out: &mut BTreeMap<u32, Node>) {
    let path = format!("{prefix}{}", f.name);
    out.insert(
        f.id,
        Node {
            path: path.clone(),
            name: f.name.clone(),
            ty: f.ty.clone(),
            required: f.required,
            rules: f.rules.clone(),
            place: place.into(),
        },
    );
    nested_nodes(&f.ty, &path, out);
}

fn nested_nodes(ty: &Type, path: &str, out: &mut BTreeMap<u32, Node>) {
    let element = |e: &Element, path: String, out: &mut BTreeMap<u32, Node>| {
        out.insert(
            e.id,
            Node {
                path: path.clone(),
                name: path.clone(),
                ty: e.ty.clone(),
                required: e.required,
                rules: e.rules.clone(),
                place: "element".into(),
            },
        );
        nested_nodes(&e.ty, &path, out);
    };
    match ty {
        Type::Struct(fields) => {
            for f in fields {
                field_nodes(f, &format!("{path}."), "member", out);
            }
        }
        Type::List(e) => element(e, format!("{path}[]"), out),
        Type::Map { key, value } => {
            element(key, format!("{path}.key"), out);
            element(value, format!("{path}.value"), out);
        }
        _ => {}
    }
}

/// The same type, ignoring nested members (compared as nodes of their own).
fn shallow(ty: &Type) -> String {
    match ty {
        Type::Timestamp { format } => format!("timestamp({})", format.pattern),
        other => other.name(),
    }
}

/// Iceberg's allowed type promotions.
fn promotion(old: &Type, new: &Type) -> bool {
    match (old, new) {
        (Type::Int, Type::Long) | (Type::Float, Type::Double) => true,
        (
            Type::Decimal {
                precision: p1,
                scale: s1,
            },
            Type::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => s1 == s2 && p2 > p1,
        _ => false,
    }
}

fn compare(o: &Contract, n: &Contract, b: &mut Builder<'_>) {
    let old_nodes = collect(o);
    let new_nodes = collect(n);
    let rejects_unknown = n.ingest.unknown_fields.keeps_out();

    for (id, on) in &old_nodes {
        let subject = format!("{} `{}` (id {id})", on.place, on.path);
        match new_nodes.get(id) {
            None => {
                let reserved = n.reserved_ids.contains(id);
                let mut classes = vec![];
                let mut reason = String::new();
                if (on.place == "envelope" || on.place.starts_with("variant")) && rejects_unknown {
                    classes.push(Class::BreaksProducers);
                    reason.push_str("producers still sending it get unknown_field; ");
                }
                if reserved {
                    reason
                        .push_str("the id is reserved, so the column's history stays unambiguous");
                    if classes.is_empty() {
                        classes.push(Class::Safe);
                    }
                } else {
                    classes.push(Class::BreaksTable);
                    reason.push_str(
                        "the id is not reserved: add it to `reserved.ids` so it is never reused",
                    );
                }
                b.push_migratable(subject, format!("`{}` removed", on.path), &classes, reason);
            }
            Some(nn) => compare_node(on, nn, &subject, b),
        }
    }
    // Members and elements of a field that is itself new come with it.
    let added_paths: Vec<String> = new_nodes
        .iter()
        .filter(|(id, _)| !old_nodes.contains_key(id))
        .map(|(_, n)| n.path.clone())
        .collect();
    for (id, nn) in &new_nodes {
        if old_nodes.contains_key(id) {
            continue;
        }
        if added_paths.iter().any(|p| {
            nn.path.len() > p.len()
                && nn.path.starts_with(p.as_str())
                && matches!(nn.path.as_bytes()[p.len()], b'.' | b'[')
        }) {
            continue;
        }
        let subject = format!("{} `{}` (id {id})", nn.place, nn.path);
        if o.reserved_ids.contains(id) {
            b.push(subject, format!("`{}` reuses reserved id {id}", nn.path), &[Class::BreaksTable], "ids of removed fields must never be reused: old data under this id means something else");
            continue;
        }
        if nn.place == "enrichment" {
            b.push(
                subject,
                format!("enrichment column `{}` added", nn.path),
                &[Class::Safe],
                "a new optional column the runtime fills; old rows read as null",
            );
        } else if nn.required && (nn.place == "envelope" || nn.place == "member") {
            b.push_migratable(
                subject,
                format!("required field `{}` added", nn.path),
                &[Class::BreaksProducers, Class::NeedsMigration],
                "events from shipped builds lack it and are refused: ship producers that send it before requiring it",
            );
        } else if nn.required {
            b.push_migratable(
                subject,
                format!("required {} field `{}` added", nn.place, nn.path),
                &[Class::BreaksProducers, Class::NeedsMigration],
                "that variant's events from shipped builds lack it: ship producers first",
            );
        } else {
            b.push(subject, format!("optional field `{}` added", nn.path), &[Class::Safe], "old events stay valid; the table gains a nullable column (the runtime adds it on start)");
        }
    }
    for name in &o.reserved_names {
        if !n.reserved_names.contains(name) {
            b.push(
                "reserved names",
                format!("`{name}` no longer reserved"),
                &[Class::BreaksTable],
                "a reserved name must stay reserved, or it may be reused with another meaning",
            );
        }
    }
    for id in &o.reserved_ids {
        if !n.reserved_ids.contains(id) && !new_nodes.contains_key(id) {
            b.push(
                "reserved ids",
                format!("id {id} no longer reserved"),
                &[Class::BreaksTable],
                "a reserved id must stay reserved, or it may be reused",
            );
        }
    }
    compare_variants(o, n, b);
    compare_table(o, n, b);
    compare_ingest(o, n, b);
    if o.owner != n.owner || o.description != n.description || o.tags != n.tags {
        b.push(
            "metadata",
            "owner, description or tags changed",
            &[Class::Safe],
            "documentation only",
        );
    }
}

fn compare_node(o: &Node, n: &Node, subject: &str, b: &mut Builder<'_>) {
    if o.name != n.name && o.place != "element" {
        b.push_migratable(
            subject,
            format!("renamed `{}` → `{}`", o.name, n.name),
            &[Class::BreaksProducers, Class::BreaksTable],
            "producers send the old JSON key, and readers query the old column name (Iceberg keeps the id, queries break)",
        );
    }
    let (ot, nt) = (shallow(&o.ty), shallow(&n.ty));
    if ot != nt {
        if promotion(&o.ty, &n.ty) {
            b.push(
                subject,
                format!("type {ot} → {nt}"),
                &[Class::NeedsMigration],
                "an allowed Iceberg promotion: promote the table column before the validator accepts wider values",
            );
        } else if matches!(
            (&o.ty, &n.ty),
            (Type::Timestamp { .. }, Type::Timestamp { .. })
        ) {
            b.push(
                subject,
                format!("timestamp format {ot} → {nt}"),
                &[Class::BreaksProducers],
                "shipped builds send the old format, which no longer parses",
            );
        } else {
            b.push(
                subject,
                format!("type {ot} → {nt}"),
                &[Class::BreaksProducers, Class::BreaksTable],
                "Iceberg allows only int→long, float→double and wider decimals; old values may not fit the new type",
            );
        }
    }
    if !o.required && n.required {
        b.push(
            subject,
            format!("`{}` became required", n.path),
            &[Class::BreaksProducers, Class::NeedsMigration],
            "events without it were accepted before: ship producers that always send it first",
        );
    } else if o.required && !n.required {
        b.push(
            subject,
            format!("`{}` became optional", n.path),
            &[Class::Safe],
            "Iceberg allows required → optional; every old event stays valid",
        );
    }
    // Rules of an incompatible type change are moot: the values themselves changed meaning.
    if ot == nt || promotion(&o.ty, &n.ty) {
        compare_rules(&o.rules, &n.rules, &n.ty, subject, b);
    }
}

fn strictness(p: Policy) -> u8 {
    match p {
        Policy::Warn => 0,
        Policy::Quarantine => 1,
        Policy::Reject => 2,
    }
}

/// Whether a rule can refuse events (warn only counts them).
fn enforcing(r: &Rule) -> bool {
    r.policy != Policy::Warn
}

fn compare_rules(old: &[Rule], new: &[Rule], ty: &Type, subject: &str, b: &mut Builder<'_>) {
    let find = |rules: &[Rule], key: &str| rules.iter().find(|r| r.kind.key() == key).cloned();
    let keys: BTreeSet<&str> = old.iter().chain(new).map(|r| r.kind.key()).collect();
    for key in keys {
        let (o, n) = (find(old, key), find(new, key));
        match (o, n) {
            (None, Some(n)) => {
                if enforcing(&n) {
                    b.push(subject, format!("rule `{key}` added"), &[Class::BreaksProducers, Class::NeedsMigration], "events that passed before may now fail it: tighten only after shipped clients comply");
                } else {
                    b.push(
                        subject,
                        format!("rule `{key}` added with policy warn"),
                        &[Class::Safe],
                        "warnings refuse nothing",
                    );
                }
            }
            (Some(_), None) => b.push(
                subject,
                format!("rule `{key}` removed"),
                &[Class::Safe],
                "a relaxation: everything valid before stays valid",
            ),
            (Some(o), Some(n)) if o == n => {}
            (Some(o), Some(n)) => {
                let tighter_policy = strictness(n.policy) > strictness(o.policy);
                let looser_policy = strictness(n.policy) < strictness(o.policy);
                let value = if o.kind == n.kind {
                    Some(false)
                } else {
                    tighter_or_looser(&o.kind, &n.kind, ty)
                };
                match value {
                    _ if o.kind == n.kind => {}
                    Some(true) if enforcing(&n) => b.push(
                        subject,
                        format!("rule `{key}` tightened ({} → {})", describe(&o.kind), describe(&n.kind)),
                        &[Class::BreaksProducers, Class::NeedsMigration],
                        "values accepted before may now fail: tighten only after shipped clients comply",
                    ),
                    Some(true) => b.push(subject, format!("rule `{key}` tightened with policy warn"), &[Class::Safe], "warnings refuse nothing"),
                    Some(false) => b.push(
                        subject,
                        format!("rule `{key}` relaxed ({} → {})", describe(&o.kind), describe(&n.kind)),
                        &[Class::Safe],
                        "everything valid before stays valid",
                    ),
                    None if o.kind != n.kind => b.push(
                        subject,
                        format!("rule `{key}` changed ({} → {})", describe(&o.kind), describe(&n.kind)),
                        &[Class::BreaksProducers],
                        "cannot prove the new rule accepts everything the old one did",
                    ),
                    None => {}
                }
                if tighter_policy {
                    b.push(subject, format!("rule `{key}` policy {} → {}", o.policy.as_str(), n.policy.as_str()), &[Class::BreaksProducers], "events that broke the rule were kept before and are now refused or quarantined");
                } else if looser_policy {
                    b.push(
                        subject,
                        format!(
                            "rule `{key}` policy {} → {}",
                            o.policy.as_str(),
                            n.policy.as_str()
                        ),
                        &[Class::Safe],
                        "a relaxation",
                    );
                }
            }
            (None, None) => {}
        }
    }
}

fn describe(kind: &RuleKind) -> String {
    match kind {
        RuleKind::Min(b) | RuleKind::Max(b) => b.to_string(),
        RuleKind::MinLength(n) | RuleKind::MaxLength(n) => n.to_string(),
        RuleKind::Pattern(p) => format!("{p:?}"),
        RuleKind::OneOf(values) => format!("{} values", values.len()),
        RuleKind::NotBefore(t) | RuleKind::NotAfter(t) => {
            format!("offset {}s skew {}s", t.offset_seconds, t.skew_seconds)
        }
    }
}

/// Some(true): tighter; Some(false): looser (or equal); None: not comparable.
fn tighter_or_looser(o: &RuleKind, n: &RuleKind, _ty: &Type) -> Option<bool> {
    let window = |t: &TimeBound, sign: i64| t.offset_seconds + sign * t.skew_seconds as i64;
    match (o, n) {
        (RuleKind::Min(a), RuleKind::Min(b)) => Some(b.as_f64() > a.as_f64()),
        (RuleKind::Max(a), RuleKind::Max(b)) => Some(b.as_f64() < a.as_f64()),
        (RuleKind::MinLength(a), RuleKind::MinLength(b)) => Some(b > a),
        (RuleKind::MaxLength(a), RuleKind::MaxLength(b)) => Some(b < a),
        (RuleKind::OneOf(a), RuleKind::OneOf(b)) => {
            let (a, b): (BTreeSet<&Literal>, BTreeSet<&Literal>) =
                (a.iter().collect(), b.iter().collect());
            if a.is_subset(&b) {
                Some(false)
            } else {
                Some(true)
            }
        }
        (RuleKind::NotBefore(a), RuleKind::NotBefore(b)) => Some(window(b, -1) > window(a, -1)),
        (RuleKind::NotAfter(a), RuleKind::NotAfter(b)) => Some(window(b, 1) < window(a, 1)),
        (RuleKind::Pattern(a), RuleKind::Pattern(b)) => {
            if a == b || pattern_contains(b, a) {
                Some(false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Whether pattern `outer` provably matches everything `inner` does: equal, or an
/// alternation with `inner` as one branch.
fn pattern_contains(outer: &str, inner: &str) -> bool {
    let parse = |p: &str| regex_syntax::Parser::new().parse(p).ok();
    let (Some(outer), Some(inner)) = (parse(outer), parse(inner)) else {
        return false;
    };
    if outer == inner {
        return true;
    }
    let strip = |h: &regex_syntax::hir::Hir| -> regex_syntax::hir::Hir {
        match h.kind() {
            regex_syntax::hir::HirKind::Capture(c) => (*c.sub).clone(),
            _ => h.clone(),
        }
    };
    match strip(&outer).kind() {
        regex_syntax::hir::HirKind::Alternation(branches) => {
            branches.iter().any(|b| strip(b) == strip(&inner))
        }
        _ => false,
    }
}

fn compare_variants(o: &Contract, n: &Contract, b: &mut Builder<'_>) {
    let (Some(ov), Some(nv)) = (&o.variants, &n.variants) else {
        match (&o.variants, &n.variants) {
            (None, Some(_)) => b.push(
                "variants",
                "variants introduced",
                &[Class::BreaksProducers],
                "the discriminator now admits only the listed values",
            ),
            (Some(_), None) => b.push(
                "variants",
                "variants removed",
                &[Class::Safe],
                "the discriminator admits any value now",
            ),
            _ => {}
        }
        return;
    };
    if ov.discriminator != nv.discriminator {
        b.push(
            "variants",
            format!(
                "discriminator `{}` → `{}`",
                ov.discriminator, nv.discriminator
            ),
            &[Class::BreaksProducers],
            "events select their variant by another field",
        );
    }
    for case in &ov.cases {
        let Some(new_case) = nv.cases.iter().find(|c| c.value == case.value) else {
            b.push_migratable(
                format!("variant {:?}", case.value),
                format!("variant {:?} removed", case.value),
                &[Class::BreaksProducers],
                "shipped builds still send it; it is now an unknown value",
            );
            continue;
        };
        for name in &new_case.require {
            if !case.require.contains(name) {
                b.push(
                    format!("variant {:?}", case.value),
                    format!("now requires `{name}`"),
                    &[Class::BreaksProducers, Class::NeedsMigration],
                    "events of this variant without it were accepted before",
                );
            }
        }
        for name in &case.require {
            if !new_case.require.contains(name) {
                b.push(
                    format!("variant {:?}", case.value),
                    format!("no longer requires `{name}`"),
                    &[Class::Safe],
                    "a relaxation",
                );
            }
        }
        let names: BTreeSet<&String> = case
            .rules
            .iter()
            .chain(&new_case.rules)
            .map(|(n, _)| n)
            .collect();
        for name in names {
            let find = |rules: &[(String, Vec<Rule>)]| {
                rules
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_default()
            };
            let ty = n
                .fields
                .iter()
                .find(|f| &f.name == name)
                .map_or(Type::String, |f| f.ty.clone());
            compare_rules(
                &find(&case.rules),
                &find(&new_case.rules),
                &ty,
                &format!("variant {:?} `{name}`", case.value),
                b,
            );
        }
    }
    for case in &nv.cases {
        if !ov.cases.iter().any(|c| c.value == case.value) {
            b.push(
                format!("variant {:?}", case.value),
                format!("variant {:?} added", case.value),
                &[Class::Safe],
                "a new discriminator value; old events are unaffected",
            );
        }
    }
}

fn compare_table(o: &Contract, n: &Contract, b: &mut Builder<'_>) {
    let (ot, nt) = (&o.table, &n.table);
    if ot.database != nt.database || ot.name != nt.name {
        b.push(
            "table",
            format!(
                "table {}.{} → {}.{}",
                ot.database, ot.name, nt.database, nt.name
            ),
            &[Class::BreaksTable],
            "events go to a different table; readers of the old one see no new data",
        );
    }
    if ot.partition != nt.partition {
        b.push("table partitioning", "partition spec changed", &[Class::BreaksTable], "old data keeps the old layout; queries and Athena DDL written for it change (plan a partition evolution)");
    }
    if ot.sort != nt.sort {
        b.push(
            "table sort order",
            "sort order changed",
            &[Class::Safe],
            "affects how new files are written, not what they hold",
        );
    }
    if ot.write != nt.write {
        b.push(
            "table write mode",
            "write mode changed",
            &[Class::BreaksTable],
            "append and upsert tables hold different histories; readers relying on one break",
        );
    }
    if ot.properties != nt.properties {
        b.push(
            "table properties",
            "table properties changed",
            &[Class::Safe],
            "table settings, not data",
        );
    }
}

fn compare_ingest(o: &Contract, n: &Contract, b: &mut Builder<'_>) {
    let (oi, ni) = (&o.ingest, &n.ingest);
    if oi.route != ni.route {
        b.push(
            "ingest route",
            format!("route {} → {}", oi.route, ni.route),
            &[Class::BreaksProducers],
            "shipped builds post to the old route",
        );
    }
    if oi.batch_route != ni.batch_route {
        let class = if oi.batch_route.is_none() {
            Class::Safe
        } else {
            Class::BreaksProducers
        };
        b.push(
            "ingest batch route",
            "batch route changed",
            &[class],
            "producers using the old batch route break; a new one breaks nobody",
        );
    }
    if ni.max_body_bytes < oi.max_body_bytes {
        b.push(
            "ingest limit",
            format!(
                "max_body_bytes {} → {}",
                oi.max_body_bytes, ni.max_body_bytes
            ),
            &[Class::BreaksProducers],
            "bodies that fit before may now be refused (413)",
        );
    } else if ni.max_body_bytes > oi.max_body_bytes {
        b.push(
            "ingest limit",
            format!(
                "max_body_bytes {} → {}",
                oi.max_body_bytes, ni.max_body_bytes
            ),
            &[Class::Safe],
            "a relaxation",
        );
    }
    if ni.max_batch_events != oi.max_batch_events {
        let tighter = ni.max_batch_events < oi.max_batch_events;
        b.push(
            "ingest limit",
            format!(
                "max_batch_events {} → {}",
                oi.max_batch_events, ni.max_batch_events
            ),
            &[if tighter {
                Class::BreaksProducers
            } else {
                Class::Safe
            }],
            if tighter {
                "batches that fit before may now be refused (413)"
            } else {
                "a relaxation"
            },
        );
    }
    let strictness = |u: UnknownFields| match u {
        UnknownFields::Drop => 0,
        UnknownFields::Warn => 1,
        UnknownFields::Quarantine => 2,
        UnknownFields::Reject => 3,
    };
    if strictness(ni.unknown_fields) > strictness(oi.unknown_fields) {
        b.push(
            "unknown fields",
            "unknown-field policy tightened",
            &[Class::BreaksProducers],
            "events with extra keys were kept before",
        );
    } else if strictness(ni.unknown_fields) < strictness(oi.unknown_fields) {
        b.push(
            "unknown fields",
            "unknown-field policy relaxed",
            &[Class::Safe],
            "a relaxation",
        );
    }
    let issuer = |i: &Issuer| match i {
        Issuer::Dev => "dev".to_string(),
        Issuer::Url(u) => u.clone(),
    };
    if oi.auth.issuer != ni.auth.issuer
        || oi.auth.audience != ni.auth.audience
        || oi.auth.jwks_url != ni.auth.jwks_url
    {
        b.push(
            "auth",
            format!(
                "issuer/audience {} {} → {} {}",
                issuer(&oi.auth.issuer),
                oi.auth.audience,
                issuer(&ni.auth.issuer),
                ni.auth.audience
            ),
            &[Class::BreaksProducers],
            "tokens shipped builds obtain no longer verify",
        );
    }
    let removed: Vec<&String> = oi
        .auth
        .scopes
        .iter()
        .filter(|s| !ni.auth.scopes.contains(s))
        .collect();
    let added: Vec<&String> = ni
        .auth
        .scopes
        .iter()
        .filter(|s| !oi.auth.scopes.contains(s))
        .collect();
    if !removed.is_empty() {
        b.push(
            "auth scopes",
            format!("scopes removed: {removed:?}"),
            &[Class::BreaksProducers],
            "tokens with only those scopes are now refused (403)",
        );
    }
    if !added.is_empty() {
        b.push(
            "auth scopes",
            format!("scopes added: {added:?}"),
            &[Class::Safe],
            "more tokens are accepted",
        );
    }
}

// ----- rendering -------------------------------------------------------------------------------

pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    if report.changes.is_empty() {
        out.push_str("no changes\n");
    }
    for c in &report.changes {
        let classes: Vec<&str> = c.classes.iter().map(|k| k.as_str()).collect();
        out.push_str(&format!(
            "[{}] {}: {} — {}\n    why: {}\n",
            classes.join(", "),
            c.contract,
            c.subject,
            c.description,
            c.reason
        ));
    }
    for e in &report.version_errors {
        out.push_str(&format!("error: {e}\n"));
    }
    out
}

pub fn render_markdown(report: &Report) -> String {
    let mut out = String::from("## Contract changes\n\n");
    if report.changes.is_empty() {
        out.push_str("No contract changes.\n");
        return out;
    }
    let breaking = report.is_breaking();
    out.push_str(if breaking {
        "**This change breaks shipped producers or the table.**\n\n"
    } else {
        "No breaking changes.\n\n"
    });
    out.push_str("| contract | what | change | classes | why |\n|---|---|---|---|---|\n");
    for c in &report.changes {
        let classes: Vec<String> = c
            .classes
            .iter()
            .map(|k| format!("`{}`", k.as_str()))
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.contract,
            c.subject.replace('|', "\\|"),
            c.description.replace('|', "\\|"),
            classes.join(" "),
            c.reason.replace('|', "\\|")
        ));
    }
    if !report.version_errors.is_empty() {
        out.push_str("\n### Version errors\n\n");
        for e in &report.version_errors {
            out.push_str(&format!("- {e}\n"));
        }
    }
    out
}
