//! A contract's release history (issue #20): the released versions kept beside it in
//! `<stem>.releases/<version>.yaml`, each checked as a contract of its own, linked into a chain
//! of hops (release → next release → … → current). Each hop's migration is resolved against
//! both sides, and every change an old client's events cannot survive without a step
//! (a new required field, a removed field, a removed variant or `one_of` value) must be
//! covered by one (C0800).

use std::collections::BTreeMap;

use crate::check::{Checked, location};
use crate::diagnostic::{Code, Diagnostic};
use crate::ir::{Contract, Field, History, Literal, Release, Step, Type};
use crate::source::Span;
use crate::syntax::ast::Step as StepDoc;
use crate::syntax::spans::escape_pointer_segment;

/// Whether `name` (a file name as loaded) is a release file: `<dir>/<stem>.releases/<v>.yaml`.
/// Returns the contract file it belongs to, without its extension (`<dir>/<stem>`).
pub fn release_owner(name: &str) -> Option<&str> {
    let (dir, _) = name.rsplit_once('/')?;
    dir.strip_suffix(".releases")
}

/// The contract file name without its extension.
pub fn stem(name: &str) -> &str {
    name.strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
        .unwrap_or(name)
}

/// Links `releases` (checked release files) into `current`'s history. Returns the diagnostics;
/// `current.contract.history` is set when there are releases and no error.
pub fn link(current: &mut Checked, mut releases: Vec<Checked>) -> Vec<Diagnostic> {
    let mut diagnostics = Vec::new();
    let here: &Checked = current;
    releases.retain(|release| release_fits(here, release, &mut diagnostics));
    releases.sort_by(|a, b| a.contract.version.cmp(&b.contract.version));
    let declared = current
        .contract
        .declared_versions
        .clone()
        .unwrap_or_default();
    if releases.is_empty() {
        if let Some((_, pointer)) = declared.migration.first() {
            diagnostics.push(
                here.diag(
                    Code::InvalidMigrationStep,
                    "a migration without a released version to migrate from",
                )
                .at(here.span(pointer), "no release precedes this version")
                .help(format!(
                    "release the previous version first: `contractc release` keeps it in {}.releases/",
                    stem(&current.file.name)
                )),
            );
        }
        for (version, pointer) in [
            (&declared.default, "/versions/default"),
            (&declared.retire_before, "/versions/retire_before"),
        ] {
            if let Some(version) = version
                && *version != current.contract.version
            {
                diagnostics.push(not_released(here, version, pointer, &[]));
            }
        }
        return diagnostics;
    }

    // Hops: each release to the next, the last to the current version.
    let mut hops: Vec<Vec<Step>> = Vec::new();
    for (i, old) in releases.iter().enumerate() {
        let (new, steps) = match releases.get(i + 1) {
            Some(next) => (
                next,
                next.contract
                    .declared_versions
                    .as_ref()
                    .map(|d| d.migration.clone())
                    .unwrap_or_default(),
            ),
            None => (here, declared.migration.clone()),
        };
        hops.push(hop(old, new, &steps, &mut diagnostics));
    }

    let released: Vec<&semver::Version> = releases.iter().map(|r| &r.contract.version).collect();
    let known = |v: &semver::Version| *v == current.contract.version || released.contains(&v);
    let default_client = declared
        .default
        .clone()
        .unwrap_or_else(|| current.contract.version.clone());
    if let Some(version) = &declared.default
        && !known(version)
    {
        diagnostics.push(not_released(here, version, "/versions/default", &released));
    }
    if let Some(retire) = &declared.retire_before {
        if !known(retire) {
            diagnostics.push(not_released(
                here,
                retire,
                "/versions/retire_before",
                &released,
            ));
        } else if default_client < *retire {
            diagnostics.push(
                here.diag(
                    Code::VersionNotReleased,
                    format!("the default client version {default_client} is retired"),
                )
                .at(here.span("/versions/retire_before"), format!("retires every version before {retire}"))
                .help("clients that declare no version would all be refused: raise `versions.default` or retire less"),
            );
        }
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return diagnostics;
    }
    let history = History {
        default_client,
        releases: releases
            .into_iter()
            .enumerate()
            .map(|(i, release)| Release {
                retired: declared
                    .retire_before
                    .as_ref()
                    .is_some_and(|retire| release.contract.version < *retire),
                upcast: hops[i..].concat(),
                contract: release.contract,
            })
            .collect(),
    };
    current.contract.history = Some(history);
    diagnostics
}

fn not_released(
    here: &Checked,
    version: &semver::Version,
    pointer: &str,
    released: &[&semver::Version],
) -> Diagnostic {
    let mut known: Vec<String> = released.iter().map(|v| v.to_string()).collect();
    known.push(here.contract.version.to_string());
    here.diag(
        Code::VersionNotReleased,
        format!("version {version} is neither released nor current"),
    )
    .at(here.span(pointer), "not a version of this contract")
    .note(format!("known versions: {}", known.join(", ")))
    .help("name a released version (see `contractc release`) or the current one")
}

/// A release file must be an earlier version of the same contract, named after its version.
fn release_fits(here: &Checked, release: &Checked, out: &mut Vec<Diagnostic>) -> bool {
    let version = &release.contract.version;
    let file_version = release
        .file
        .name
        .rsplit_once('/')
        .map_or(release.file.name.as_str(), |(_, name)| name);
    let problem = if release.contract.name != here.contract.name {
        Some((
            "/contract",
            format!(
                "a release of `{}` kept beside contract `{}`",
                release.contract.name, here.contract.name
            ),
        ))
    } else if stem(file_version) != version.to_string() {
        Some((
            "/version",
            format!("release file {file_version} holds version {version}"),
        ))
    } else if *version == here.contract.version && release.file.text == here.file.text {
        // Just released, not changed since: nothing to link yet.
        return false;
    } else if *version == here.contract.version {
        Some((
            "/version",
            format!(
                "version {version} was released with other contents: a released version never changes"
            ),
        ))
    } else if *version > here.contract.version {
        Some((
            "/version",
            format!(
                "release {version} is newer than the current version {}",
                here.contract.version
            ),
        ))
    } else {
        None
    };
    if let Some((pointer, message)) = problem {
        out.push(
            release
                .diag(Code::ReleaseMismatch, message)
                .at(release.span(pointer), "here")
                .help("bump the contract's version when you change it; `contractc release <contract file>` keeps the current version as <stem>.releases/<version>.yaml first"),
        );
        return false;
    }
    true
}

/// Top-level JSON members of a version: envelope fields and variant payload fields, by id.
fn members(c: &Contract) -> BTreeMap<u32, &Field> {
    let mut out: BTreeMap<u32, &Field> = c.fields.iter().map(|f| (f.id, f)).collect();
    for case in c.variants.iter().flat_map(|v| &v.cases) {
        for f in &case.fields {
            out.entry(f.id).or_insert(f);
        }
    }
    out
}

fn by_name<'c>(members: &BTreeMap<u32, &'c Field>, name: &str) -> Option<&'c Field> {
    members.values().find(|f| f.name == name).copied()
}

/// The string values a version allows for a member: its variant cases (the discriminator) or
/// its `one_of` strings.
fn allowed_values(c: &Contract, field: &Field) -> Option<Vec<String>> {
    if let Some(variants) = c
        .variants
        .as_ref()
        .filter(|v| v.discriminator == field.name)
    {
        return Some(
            variants
                .cases
                .iter()
                .map(|case| case.value.clone())
                .collect(),
        );
    }
    let values = contract_manifest::one_of(&field.rules)?;
    Some(
        values
            .iter()
            .filter_map(|v| match v {
                Literal::String(s) => Some(s.clone()),
                Literal::Int(_) => None,
            })
            .collect(),
    )
}

/// Resolves one hop's steps (old → new) and checks that they cover every break.
fn hop(
    old: &Checked,
    new: &Checked,
    steps: &[(StepDoc, String)],
    out: &mut Vec<Diagnostic>,
) -> Vec<Step> {
    let old_members = members(&old.contract);
    let new_members = members(&new.contract);
    // Renames first: every later step names fields as the new version does.
    let mut resolved: Vec<Step> = old_members
        .iter()
        .filter_map(|(id, o)| {
            let n = new_members.get(id)?;
            (o.name != n.name).then(|| Step::Rename {
                from: o.name.clone(),
                to: n.name.clone(),
            })
        })
        .collect();
    for (step, pointer) in steps {
        let mut resolver = Resolver {
            old,
            new,
            old_members: &old_members,
            new_members: &new_members,
            pointer,
            out,
        };
        if let Some(step) = resolver.resolve(step) {
            resolved.push(step);
        }
    }
    coverage(old, new, &old_members, &new_members, &resolved, out);
    resolved
}

/// Resolves one step of a hop against both sides, reporting what cannot apply (C0803).
struct Resolver<'s, 'a> {
    old: &'a Checked,
    new: &'a Checked,
    old_members: &'s BTreeMap<u32, &'a Field>,
    new_members: &'s BTreeMap<u32, &'a Field>,
    /// The step's JSON pointer.
    pointer: &'s str,
    out: &'s mut Vec<Diagnostic>,
}

impl<'a> Resolver<'_, 'a> {
    fn bad(&mut self, field: &str, key: &str, label: String, help: impl Into<String>) {
        let span = self.new.span(&format!("{}/{key}", self.pointer));
        self.out.push(
            self.new
                .diag(
                    Code::InvalidMigrationStep,
                    format!("this step cannot apply to `{field}`"),
                )
                .at(span, label)
                .help(help),
        );
    }

    /// A field of the new version a step fills or changes.
    fn target(&mut self, field: &str) -> Option<&'a Field> {
        let found = by_name(self.new_members, field);
        if found.is_none() {
            let label = format!(
                "no top-level field of {} has this name",
                self.new.contract.version
            );
            self.bad(
                field,
                "field",
                label,
                "a step fills or changes a field of the version it leads to",
            );
        }
        found
    }

    /// A field of the previous release a step reads or removes.
    fn source(&mut self, field: &str, key: &str, help: &str) -> Option<&'a Field> {
        let found = by_name(self.old_members, field);
        if found.is_none() {
            let label = format!(
                "no top-level field of {} has this name",
                self.old.contract.version
            );
            self.bad(field, key, label, help);
        }
        found
    }

    /// Mapped values must be values the field allows.
    fn check_mapped(&mut self, f: &Field, map: &[(String, String)]) {
        let Some(allowed) = allowed_values(&self.new.contract, f) else {
            return;
        };
        for (from, to) in map {
            if !allowed.contains(to) {
                let label = format!(
                    "`{to}` is not a value of `{}` in {}",
                    f.name, self.new.contract.version
                );
                let help = format!("map to one of: {}", allowed.join(", "));
                self.bad(
                    &f.name,
                    &format!("map/{}", escape_pointer_segment(from)),
                    label,
                    help,
                );
            }
        }
    }

    /// A constant the step writes must be a value of the field.
    fn check_value(&mut self, f: &Field, key: &str, value: &serde_json::Value) {
        if !value_fits(
            &f.ty,
            allowed_values(&self.new.contract, f).as_deref(),
            value,
        ) {
            let label = format!(
                "not a value of `{}` ({}) in {}",
                f.name,
                f.ty.name(),
                self.new.contract.version
            );
            self.bad(&f.name, key, label, "give a value the field accepts");
        }
    }

    fn resolve(&mut self, step: &StepDoc) -> Option<Step> {
        match step {
            StepDoc::MapValues { field, map } => {
                let f = self.target(field)?;
                let map = string_map(map);
                self.check_mapped(f, &map);
                Some(Step::MapValues {
                    field: f.name.clone(),
                    map,
                })
            }
            StepDoc::Derive {
                field,
                from,
                map,
                otherwise,
            } => {
                let f = self.target(field)?;
                let source =
                    self.source(from, "from", "`from` names a field of the previous release")?;
                let map = map.as_ref().map(string_map).unwrap_or_default();
                self.check_mapped(f, &map);
                if let Some(value) = otherwise {
                    self.check_value(f, "otherwise", value);
                }
                Some(Step::Derive {
                    field: f.name.clone(),
                    from: key_after(self.new_members, source).to_string(),
                    map,
                    otherwise: otherwise.as_ref().map(|v| v.to_string()),
                })
            }
            StepDoc::Default { field, value } => {
                let f = self.target(field)?;
                self.check_value(f, "value", value);
                Some(Step::Default {
                    field: f.name.clone(),
                    value: value.to_string(),
                })
            }
            StepDoc::Scale { field, by } => self.scale(field, by),
            StepDoc::Drop { field } => {
                let f = self.source(
                    field,
                    "field",
                    "`drop` removes a field of the previous release",
                )?;
                if self.new_members.contains_key(&f.id) {
                    let label = format!(
                        "id {} is still a field of {}",
                        f.id, self.new.contract.version
                    );
                    self.bad(
                        field,
                        "field",
                        label,
                        "`drop` removes only fields the new version no longer has",
                    );
                    return None;
                }
                Some(Step::Drop {
                    field: f.name.clone(),
                })
            }
        }
    }

    fn scale(&mut self, field: &str, by: &serde_json::Number) -> Option<Step> {
        let f = self.target(field)?;
        if !matches!(f.ty, Type::Int | Type::Long | Type::Float | Type::Double) {
            let label = format!("{} is not a number", f.ty.with_article());
            self.bad(
                field,
                "field",
                label,
                "`scale` multiplies int, long, float and double fields",
            );
            return None;
        }
        if matches!(f.ty, Type::Int | Type::Long) && !(by.is_i64() || by.is_u64()) {
            let label = format!("{} holds integers", f.name);
            self.bad(
                field,
                "by",
                label,
                "scale an integer field by an integer (or make it a double)",
            );
            return None;
        }
        Some(Step::Scale {
            field: f.name.clone(),
            by: by.to_string(),
        })
    }
}

/// Whether a constant a step writes has the field's JSON type (and, for strings with a list of
/// values, is one of them). Formats and rules beyond that are the current validator's to judge.
fn value_fits(ty: &Type, allowed: Option<&[String]>, value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => {
            matches!(
                ty,
                Type::String
                    | Type::Date
                    | Type::Timestamp { .. }
                    | Type::TimestampTz
                    | Type::Uuid
                    | Type::Decimal { .. }
            ) && allowed.is_none_or(|a| a.contains(text))
        }
        serde_json::Value::Number(n) => match ty {
            Type::Int | Type::Long => n.is_i64() || n.is_u64(),
            Type::Float | Type::Double | Type::Decimal { .. } => true,
            _ => false,
        },
        serde_json::Value::Bool(_) => *ty == Type::Boolean,
        _ => false,
    }
}

fn string_map(map: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    map.iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().map_or_else(|| v.to_string(), str::to_string),
            )
        })
        .collect()
}

/// The key an old member has once the hop's renames are applied (its name in the new version,
/// when its id is still there).
fn key_after<'f>(new_members: &BTreeMap<u32, &'f Field>, old: &'f Field) -> &'f str {
    new_members.get(&old.id).map_or(&old.name, |n| &n.name)
}

/// Every break an old client's events cannot survive must be covered by a step (C0800).
fn coverage(
    old: &Checked,
    new: &Checked,
    old_members: &BTreeMap<u32, &Field>,
    new_members: &BTreeMap<u32, &Field>,
    steps: &[Step],
    out: &mut Vec<Diagnostic>,
) {
    let (old_version, new_version) = (&old.contract.version, &new.contract.version);
    let fills = |name: &str| {
        steps.iter().any(|s| match s {
            Step::Default { field, .. } => field == name,
            Step::Derive {
                field,
                map,
                otherwise,
                from,
            } => {
                field == name
                    && (otherwise.is_some()
                        || (map.is_empty()
                            && old_members
                                .values()
                                .any(|o| o.required && key_after(new_members, o) == from)))
            }
            _ => false,
        })
    };
    let uncovered = |message: String, span: Span, label: String, help: String| {
        new.diag(Code::UncoveredBreak, message)
            .at(span, label)
            .help(help)
            .note(format!("clients of {old_version} keep sending their events; a migration step turns them into events of {new_version}"))
    };
    for (i, f) in new.contract.fields.iter().enumerate() {
        let was_required = old_members.get(&f.id).is_some_and(|o| o.required);
        if f.required && !was_required && !fills(&f.name) {
            out.push(uncovered(
                format!("required field `{}` has no value in events of {old_version}", f.name),
                new.span(&format!("/fields/{i}/name")),
                format!("required in {new_version}, absent or optional in {old_version}"),
                format!("add a step: `- default: {{ field: {0}, value: ... }}` or `- derive: {{ field: {0}, from: <a field of {old_version}>, otherwise: ... }}`", f.name),
            ));
        }
    }
    let rejects_unknown = new.contract.ingest.unknown_fields.keeps_out();
    for o in old_members.values() {
        let dropped = steps
            .iter()
            .any(|s| matches!(s, Step::Drop { field } if *field == o.name));
        if rejects_unknown && !new_members.contains_key(&o.id) && !dropped {
            out.push(
                uncovered(
                    format!(
                        "field `{}` (id {}) of {old_version} is gone in {new_version}",
                        o.name, o.id
                    ),
                    new.span("/version"),
                    format!("{new_version} refuses unknown fields"),
                    format!("add a step: `- drop: {{ field: {} }}`", o.name),
                )
                .note(format!(
                    "declared at {}",
                    location(old, &field_pointer(&old.contract, o.id))
                )),
            );
        }
    }
    for (id, o) in old_members {
        let Some(n) = new_members.get(id) else {
            continue;
        };
        let (Some(before), Some(after)) = (
            allowed_values(&old.contract, o),
            allowed_values(&new.contract, n),
        ) else {
            continue;
        };
        let mapped = |value: &str| {
            steps.iter().any(|s| matches!(s, Step::MapValues { field, map } if *field == n.name && map.iter().any(|(from, _)| from == value)))
        };
        for value in before.iter().filter(|v| !after.contains(v) && !mapped(v)) {
            let span = if new
                .contract
                .variants
                .as_ref()
                .is_some_and(|v| v.discriminator == n.name)
            {
                new.key_span("/variants/cases")
            } else {
                new.span(&field_pointer(&new.contract, n.id))
            };
            out.push(uncovered(
                format!("`{}` value `{value}` of {old_version} is not a value of {new_version}", n.name),
                span,
                format!("`{value}` is gone"),
                format!("add a step: `- map_values: {{ field: {}, map: {{ \"{value}\": <a value of {new_version}> }} }}`", n.name),
            ));
        }
    }
}

/// The JSON pointer of a top-level member's name in its contract file.
fn field_pointer(c: &Contract, id: u32) -> String {
    if let Some(i) = c.fields.iter().position(|f| f.id == id) {
        return format!("/fields/{i}/name");
    }
    for case in c.variants.iter().flat_map(|v| &v.cases) {
        if let Some(i) = case.fields.iter().position(|f| f.id == id) {
            return format!(
                "/variants/cases/{}/fields/{i}/name",
                escape_pointer_segment(&case.value)
            );
        }
    }
    "/fields".into()
}
