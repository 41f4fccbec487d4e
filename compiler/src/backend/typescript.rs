//! The web client (TypeScript, browsers and Node): per contract, one module with a type per
//! variant (the discriminator a literal type, required fields required properties), typed
//! constructors, `validate` (the server's codes, paths, policies and messages for every rule a
//! typed value can break), `encode` (JSON), `decode` (JSON into the types, refusing what the
//! types cannot hold) and the contract's `CONTRACT` description; plus the shared client runtime
//! (`contractc-runtime.ts`: identity, retry, persistent queue, sender).
//!
//! What the types make impossible (wrong JSON types, unknown and duplicate keys, missing
//! required fields, unknown variants, unparseable timestamps) `validate` does not need to check;
//! `docs/conformance.md` lists it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::GeneratedFile;
use crate::ir::{
    Bound, Contract, ContractSet, Field, FormatItem, Literal, Rule, RuleKind, TimestampFormat,
    Type, UnknownFields, Valid, Variant,
};

/// The runtime every module imports, identical for every contract.
const RUNTIME: &str = include_str!("../../templates/typescript/contractc-runtime.ts");

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        let dir = format!("{}/clients/typescript", c.name);
        files.push(GeneratedFile::new(
            format!("{dir}/contractc-runtime.ts"),
            format!("{}{RUNTIME}", super::header("//", &c.source.path)),
        ));
        files.push(GeneratedFile::new(
            format!("{dir}/{}.ts", c.name),
            Module::new(c).render(),
        ));
    }
    files
}

/// A TypeScript string literal (JSON's escaping is valid TypeScript).
fn lit(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// Text safe inside a `/** */` comment.
fn doc_text(text: &str) -> String {
    text.replace("*/", "*\\/").replace('\n', " ")
}

/// A decimal bound as an unscaled integer at `scale` (as the Rust validator computes it).
fn decimal_bound(b: Bound, scale: u8, is_min: bool) -> i128 {
    match b {
        Bound::Int(i) => i128::from(i) * 10i128.pow(u32::from(scale)),
        Bound::Float(f) => {
            let scaled = f * 10f64.powi(i32::from(scale));
            if (scaled - scaled.round()).abs() < 1e-6 {
                scaled.round() as i128
            } else if is_min {
                scaled.ceil() as i128
            } else {
                scaled.floor() as i128
            }
        }
    }
}

fn policy(rule: &Rule) -> String {
    lit(rule.policy.as_str())
}

struct Module<'c> {
    contract: &'c Contract,
    /// Declarations before the event types: patterns, formats.
    statics: Vec<String>,
    patterns: BTreeMap<String, String>,
    formats: BTreeMap<String, String>,
    /// Struct interface names by field id; their code in emission order.
    struct_names: BTreeMap<u32, String>,
    used_names: BTreeSet<String>,
    struct_code: Vec<String>,
    counter: usize,
}

impl<'c> Module<'c> {
    fn new(contract: &'c Contract) -> Self {
        let mut used_names: BTreeSet<String> = ["Event", "CONTRACT"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(v) = &contract.variants {
            for case in &v.cases {
                used_names.insert(format!("{}Event", case.ident));
            }
        }
        Module {
            contract,
            statics: Vec::new(),
            patterns: BTreeMap::new(),
            formats: BTreeMap::new(),
            struct_names: BTreeMap::new(),
            used_names,
            struct_code: Vec::new(),
            counter: 0,
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        self.counter += 1;
        format!("{base}{}", self.counter)
    }

    fn pattern(&mut self, pattern: &str) -> String {
        if let Some(name) = self.patterns.get(pattern) {
            return name.clone();
        }
        let name = format!("PATTERN_{}", self.patterns.len());
        self.statics.push(format!(
            "/** `{}`, full-match. */\nconst {name} = new RegExp({}, \"u\");\n",
            doc_text(pattern),
            lit(&format!("^(?:{pattern})$"))
        ));
        self.patterns.insert(pattern.to_string(), name.clone());
        name
    }

    fn format(&mut self, format: &TimestampFormat) -> String {
        if let Some(name) = self.formats.get(&format.pattern) {
            return name.clone();
        }
        let name = format!("FORMAT_{}", self.formats.len());
        let items: Vec<String> = format
            .items
            .iter()
            .map(|item| match item {
                FormatItem::Literal(text) => format!("{{ literal: {} }}", lit(text)),
                FormatItem::Year => "\"%Y\"".into(),
                FormatItem::Month => "\"%m\"".into(),
                FormatItem::Day => "\"%d\"".into(),
                FormatItem::Hour => "\"%H\"".into(),
                FormatItem::Minute => "\"%M\"".into(),
                FormatItem::Second => "\"%S\"".into(),
                FormatItem::Fraction => "\"%.f\"".into(),
            })
            .collect();
        self.statics.push(format!(
            "/** The timestamp format `{}`. */\nconst {name}: readonly rt.FormatItem[] = [{}];\n",
            doc_text(&format.pattern),
            items.join(", ")
        ));
        self.formats.insert(format.pattern.clone(), name.clone());
        name
    }

    /// The interface name of a struct-typed field (emitting it on first use).
    fn struct_name(&mut self, id: u32, hint: &str, fields: &[Field]) -> String {
        if let Some(name) = self.struct_names.get(&id) {
            return name.clone();
        }
        let mut name = pascal(hint);
        if self.used_names.contains(&name) {
            name = format!("{name}{id}");
        }
        self.used_names.insert(name.clone());
        self.struct_names.insert(id, name.clone());
        let code = self.struct_items(&name, fields);
        self.struct_code.push(code);
        name
    }

    // ----- types, readers, writers ---------------------------------------------------------

    fn ts_type(&mut self, ty: &Type, id: u32, hint: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date | Type::Decimal { .. } => "string".into(),
            Type::Boolean => "boolean".into(),
            Type::Int | Type::Float | Type::Double => "number".into(),
            Type::Long => "number | bigint".into(),
            Type::Timestamp { .. } | Type::TimestampTz => "Date".into(),
            Type::List(e) => {
                let inner = self.ts_type(&e.ty, e.id, &format!("{hint}_item"));
                if e.required {
                    format!("Array<{inner}>")
                } else {
                    format!("Array<{inner} | null>")
                }
            }
            Type::Map { value, .. } => {
                let inner = self.ts_type(&value.ty, value.id, &format!("{hint}_value"));
                if value.required {
                    format!("Record<string, {inner}>")
                } else {
                    format!("Record<string, {inner} | null>")
                }
            }
            Type::Struct(fields) => self.struct_name(id, hint, fields),
        }
    }

    fn reader(&mut self, ty: &Type, id: u32, hint: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date => "rt.read.string".into(),
            Type::Decimal { .. } => "rt.read.decimal".into(),
            Type::Boolean => "rt.read.boolean".into(),
            Type::Int => "rt.read.integer".into(),
            Type::Float | Type::Double => "rt.read.number".into(),
            Type::Long => "rt.read.long".into(),
            Type::Timestamp { format } => format!("rt.read.timestamp({})", self.format(format)),
            Type::TimestampTz => "rt.read.timestamptz".into(),
            Type::List(e) => {
                let inner = self.reader(&e.ty, e.id, &format!("{hint}_item"));
                if e.required {
                    format!("rt.read.list({inner})")
                } else {
                    format!("rt.read.list(rt.read.nullable({inner}))")
                }
            }
            Type::Map { value, .. } => {
                let inner = self.reader(&value.ty, value.id, &format!("{hint}_value"));
                if value.required {
                    format!("rt.read.map({inner})")
                } else {
                    format!("rt.read.map(rt.read.nullable({inner}))")
                }
            }
            Type::Struct(fields) => format!("decode{}", self.struct_name(id, hint, fields)),
        }
    }

    fn writer(&mut self, ty: &Type, id: u32, hint: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date | Type::Decimal { .. } => {
                "rt.write.string".into()
            }
            Type::Boolean => "rt.write.boolean".into(),
            Type::Int | Type::Float | Type::Double => "rt.write.number".into(),
            Type::Long => "rt.write.long".into(),
            Type::Timestamp { format } => format!("rt.write.timestamp({})", self.format(format)),
            Type::TimestampTz => "rt.write.timestamptz".into(),
            Type::List(e) => {
                let inner = self.writer(&e.ty, e.id, &format!("{hint}_item"));
                if e.required {
                    format!("rt.write.list({inner})")
                } else {
                    format!("rt.write.list(rt.write.nullable({inner}))")
                }
            }
            Type::Map { value, .. } => {
                let inner = self.writer(&value.ty, value.id, &format!("{hint}_value"));
                if value.required {
                    format!("rt.write.map({inner})")
                } else {
                    format!("rt.write.map(rt.write.nullable({inner}))")
                }
            }
            Type::Struct(fields) => format!("encode{}", self.struct_name(id, hint, fields)),
        }
    }

    // ----- checks ----------------------------------------------------------------------------

    /// Statements checking `expr` (of type `ty`, present) against its type and `rules`, with
    /// violations reported at `field` under the checker's current path.
    #[allow(clippy::too_many_arguments)]
    fn checks(
        &mut self,
        ty: &Type,
        id: u32,
        hint: &str,
        rules: &[Rule],
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let f = field.map_or_else(|| "null".to_string(), lit);
        match ty {
            Type::String => {
                if !rules.is_empty() {
                    let v = self.fresh("s");
                    let _ = writeln!(out, "{indent}{{");
                    let _ = writeln!(out, "{indent}  const {v} = {expr};");
                    self.rule_checks(ty, rules, &v, &f, out, &format!("{indent}  "));
                    let _ = writeln!(out, "{indent}}}");
                }
            }
            Type::Boolean => {}
            Type::Uuid => {
                let _ = writeln!(out, "{indent}rt.checkUuid(cx, {f}, {expr});");
            }
            Type::Int | Type::Long => {
                let (min, max, name) = if matches!(ty, Type::Int) {
                    ("rt.INT_MIN", "rt.INT_MAX", "an int")
                } else {
                    ("rt.LONG_MIN", "rt.LONG_MAX", "a long")
                };
                let call = format!(
                    "rt.checkInteger(cx, {f}, {expr}, {min}, {max}, {})",
                    lit(name)
                );
                self.guarded(ty, rules, "n", &call, "", &f, out, indent);
            }
            Type::Float | Type::Double => {
                let call = format!(
                    "rt.checkNumber(cx, {f}, {expr}, {})",
                    matches!(ty, Type::Float)
                );
                self.guarded(ty, rules, "x", &call, "", &f, out, indent);
            }
            Type::Decimal { precision, scale } => {
                let call = format!("rt.checkDecimal(cx, {f}, {expr}, {precision}, {scale})");
                self.guarded(ty, rules, "d", &call, "", &f, out, indent);
            }
            Type::Date => {
                let call = format!("rt.checkDate(cx, {f}, {expr})");
                self.guarded(
                    ty,
                    rules,
                    "day",
                    &call,
                    " * 86_400_000_000",
                    &f,
                    out,
                    indent,
                );
            }
            Type::Timestamp { .. } | Type::TimestampTz => {
                let call = format!("rt.dateMicros(cx, {f}, {expr})");
                self.guarded(ty, rules, "t", &call, "", &f, out, indent);
            }
            Type::List(e) => {
                let items = self.fresh("items");
                let i = self.fresh("i");
                let item = self.fresh("item");
                let inner_indent = format!("{indent}  ");
                let mut body = String::new();
                self.checks(
                    &e.ty,
                    e.id,
                    &format!("{hint}_item"),
                    &e.rules,
                    &item,
                    None,
                    &mut body,
                    &format!("{inner_indent}    "),
                );
                if body.is_empty() && rules.is_empty() {
                    return;
                }
                let _ = writeln!(out, "{indent}{{");
                let _ = writeln!(out, "{inner_indent}const {items} = {expr};");
                if !body.is_empty() {
                    if let Some(name) = field {
                        let _ = writeln!(out, "{inner_indent}cx.enterKey({});", lit(name));
                    }
                    let _ = writeln!(
                        out,
                        "{inner_indent}for (let {i} = 0; {i} < {items}.length; {i} += 1) {{"
                    );
                    let _ = writeln!(out, "{inner_indent}  cx.enterIndex({i});");
                    let _ = writeln!(out, "{inner_indent}  const {item} = {items}[{i}];");
                    let _ = writeln!(
                        out,
                        "{inner_indent}  if ({item} !== undefined && {item} !== null) {{"
                    );
                    out.push_str(&body);
                    let _ = writeln!(out, "{inner_indent}  }}");
                    let _ = writeln!(out, "{inner_indent}  cx.leave();");
                    let _ = writeln!(out, "{inner_indent}}}");
                    if field.is_some() {
                        let _ = writeln!(out, "{inner_indent}cx.leave();");
                    }
                }
                self.rule_checks(
                    ty,
                    rules,
                    &format!("{items}.length"),
                    &f,
                    out,
                    &inner_indent,
                );
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Map { key, value } => {
                let map = self.fresh("map");
                let k = self.fresh("key");
                let item = self.fresh("value");
                let inner_indent = format!("{indent}  ");
                let mut key_body = String::new();
                self.checks(
                    &key.ty,
                    key.id,
                    &format!("{hint}_key"),
                    &key.rules,
                    &k,
                    None,
                    &mut key_body,
                    &format!("{inner_indent}  "),
                );
                let mut body = String::new();
                self.checks(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    &value.rules,
                    &item,
                    None,
                    &mut body,
                    &format!("{inner_indent}    "),
                );
                if key_body.is_empty() && body.is_empty() && rules.is_empty() {
                    return;
                }
                let _ = writeln!(out, "{indent}{{");
                let _ = writeln!(out, "{inner_indent}const {map} = {expr};");
                if !key_body.is_empty() || !body.is_empty() {
                    if let Some(name) = field {
                        let _ = writeln!(out, "{inner_indent}cx.enterKey({});", lit(name));
                    }
                    let _ = writeln!(
                        out,
                        "{inner_indent}for (const {k} of Object.keys({map})) {{"
                    );
                    let _ = writeln!(out, "{inner_indent}  cx.enterKey({k});");
                    out.push_str(&key_body);
                    if !body.is_empty() {
                        let _ = writeln!(out, "{inner_indent}  const {item} = {map}[{k}];");
                        let _ = writeln!(
                            out,
                            "{inner_indent}  if ({item} !== undefined && {item} !== null) {{"
                        );
                        out.push_str(&body);
                        let _ = writeln!(out, "{inner_indent}  }}");
                    }
                    let _ = writeln!(out, "{inner_indent}  cx.leave();");
                    let _ = writeln!(out, "{inner_indent}}}");
                    if field.is_some() {
                        let _ = writeln!(out, "{inner_indent}cx.leave();");
                    }
                }
                self.rule_checks(
                    ty,
                    rules,
                    &format!("Object.keys({map}).length"),
                    &f,
                    out,
                    &inner_indent,
                );
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Struct(fields) => {
                let name = self.struct_name(id, hint, fields);
                if let Some(field) = field {
                    let _ = writeln!(out, "{indent}cx.enterKey({});", lit(field));
                }
                let _ = writeln!(out, "{indent}check{name}(cx, {expr}, now);");
                if field.is_some() {
                    let _ = writeln!(out, "{indent}cx.leave();");
                }
            }
        }
    }

    /// `call` (a type check returning the value or null) and, when it passed, the rules on
    /// `value + suffix`.
    #[allow(clippy::too_many_arguments)]
    fn guarded(
        &mut self,
        ty: &Type,
        rules: &[Rule],
        base: &str,
        call: &str,
        suffix: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        if rules.is_empty() {
            let _ = writeln!(out, "{indent}{call};");
            return;
        }
        let var = self.fresh(base);
        let _ = writeln!(out, "{indent}const {var} = {call};");
        let _ = writeln!(out, "{indent}if ({var} !== null) {{");
        let value = if suffix.is_empty() {
            var.clone()
        } else {
            format!("({var}{suffix})")
        };
        self.rule_checks(ty, rules, &value, f, out, &format!("{indent}  "));
        let _ = writeln!(out, "{indent}}}");
    }

    /// One `if` per rule; `v` is the value as the rule compares it (a length for lists and
    /// maps, a bigint for integers and decimals, microseconds for times).
    fn rule_checks(
        &mut self,
        ty: &Type,
        rules: &[Rule],
        v: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        for rule in rules {
            let failed = match &rule.kind {
                RuleKind::Min(b) | RuleKind::Max(b) => {
                    let is_min = matches!(rule.kind, RuleKind::Min(_));
                    let op = if is_min { "<" } else { ">" };
                    match (ty, b) {
                        (Type::Decimal { scale, .. }, b) => {
                            format!("{v} {op} {}n", decimal_bound(*b, *scale, is_min))
                        }
                        (Type::Int | Type::Long, Bound::Int(i)) => format!("{v} {op} {i}n"),
                        (Type::Int | Type::Long, Bound::Float(x)) => {
                            format!("Number({v}) {op} {x:?}")
                        }
                        (_, b) => format!("{v} {op} {:?}", b.as_f64()),
                    }
                }
                RuleKind::MinLength(n) | RuleKind::MaxLength(n) => {
                    let op = if matches!(rule.kind, RuleKind::MinLength(_)) {
                        "<"
                    } else {
                        ">"
                    };
                    let len = if matches!(ty, Type::String) {
                        format!("rt.charLength({v})")
                    } else {
                        v.to_string()
                    };
                    format!("{len} {op} {n}")
                }
                RuleKind::Pattern(p) => {
                    let name = self.pattern(p);
                    format!("!{name}.test({v})")
                }
                RuleKind::OneOf(values) => {
                    let shown: Vec<String> = values
                        .iter()
                        .map(|l| match l {
                            Literal::String(s) => lit(s),
                            Literal::Int(i) => format!("{i}n"),
                        })
                        .collect();
                    let array = if matches!(ty, Type::String) {
                        format!("([{}] as string[])", shown.join(", "))
                    } else {
                        format!("([{}] as bigint[])", shown.join(", "))
                    };
                    format!("!{array}.includes({v})")
                }
                RuleKind::NotBefore(bound) => {
                    format!("{v} < now + {}", bound.earliest_offset() * 1_000_000)
                }
                RuleKind::NotAfter(bound) => {
                    format!("{v} > now + {}", bound.latest_offset() * 1_000_000)
                }
            };
            let message = super::messages::rule_message(rule, ty);
            let _ = writeln!(out, "{indent}if ({failed}) {{");
            let _ = writeln!(
                out,
                "{indent}  cx.report({}, {f}, {}, {});",
                lit(rule.kind.key()),
                policy(rule),
                lit(&message)
            );
            let _ = writeln!(out, "{indent}}}");
        }
    }

    /// Checks of one object field: `missing` when a required one is absent (JavaScript callers
    /// can get past the types), then its type and rules.
    fn field_checks(
        &mut self,
        field: &Field,
        required: bool,
        missing_message: &str,
        extra_rules: &[Rule],
        object: &str,
        out: &mut String,
    ) {
        let access = format!("{object}.{}", field.name);
        let mut rules = field.rules.clone();
        rules.extend(extra_rules.iter().cloned());
        let mut body = String::new();
        self.checks(
            &field.ty,
            field.id,
            &field.name,
            &rules,
            &access,
            Some(&field.name),
            &mut body,
            "    ",
        );
        if required {
            let _ = writeln!(out, "  if ({access} === undefined || {access} === null) {{");
            let _ = writeln!(
                out,
                "    cx.report(\"missing\", {}, \"reject\", {});",
                lit(&field.name),
                lit(missing_message)
            );
            let _ = writeln!(out, "  }} else {{");
        } else {
            let _ = writeln!(out, "  if ({access} !== undefined && {access} !== null) {{");
        }
        out.push_str(&body);
        let _ = writeln!(out, "  }}");
    }

    // ----- objects -----------------------------------------------------------------------------

    /// Property lines of an interface.
    fn properties(&mut self, fields: &[(&Field, bool)], out: &mut String) {
        for (field, required) in fields {
            let ty = self.ts_type(&field.ty, field.id, &field.name);
            let mut doc = String::new();
            if let Some(d) = &field.description {
                doc.push_str(&doc_text(d));
                doc.push(' ');
            }
            let _ = write!(
                doc,
                "(`{}`, id {}, {}{})",
                field.name,
                field.id,
                field.ty.name(),
                if field.pii.is_personal() {
                    ", personal data"
                } else {
                    ""
                }
            );
            let _ = writeln!(out, "  /** {doc} */");
            let optional = if *required { "" } else { "?" };
            let _ = writeln!(out, "  {}{optional}: {ty};", field.name);
        }
    }

    /// Property lines of a decoded object literal (from the map `o`).
    fn decoded(&mut self, fields: &[(&Field, bool)], out: &mut String, indent: &str) {
        for (field, required) in fields {
            let reader = self.reader(&field.ty, field.id, &field.name);
            let how = if *required { "required" } else { "optional" };
            let _ = writeln!(
                out,
                "{indent}{}: rt.read.{how}(o.get({}), {reader}),",
                field.name,
                lit(&field.name)
            );
        }
    }

    /// Statements pushing each present field's JSON into `parts`.
    fn encoded(&mut self, fields: &[(&Field, bool)], object: &str, out: &mut String) {
        for (field, required) in fields {
            let writer = self.writer(&field.ty, field.id, &field.name);
            let key = lit(&format!("{}:", lit(&field.name)));
            let access = format!("{object}.{}", field.name);
            if *required {
                let _ = writeln!(out, "  parts.push({key} + {writer}({access}));");
            } else {
                let _ = writeln!(
                    out,
                    "  if ({access} !== undefined && {access} !== null) parts.push({key} + {writer}({access}));"
                );
            }
        }
    }

    fn allowed_keys(&self, names: &[&str]) -> String {
        if self.contract.ingest.unknown_fields == UnknownFields::Drop {
            "null".into()
        } else {
            let quoted: Vec<String> = names.iter().map(|n| lit(n)).collect();
            format!("[{}]", quoted.join(", "))
        }
    }

    fn struct_items(&mut self, name: &str, fields: &[Field]) -> String {
        let list: Vec<(&Field, bool)> = fields.iter().map(|f| (f, f.required)).collect();
        let mut out = String::new();
        let _ = writeln!(out, "export interface {name} {{");
        self.properties(&list, &mut out);
        let _ = writeln!(out, "}}\n");
        let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
        let _ = writeln!(out, "function decode{name}(value: rt.JsonValue): {name} {{");
        let _ = writeln!(
            out,
            "  const o = rt.read.object(value, {});",
            self.allowed_keys(&names)
        );
        let _ = writeln!(out, "  return {{");
        self.decoded(&list, &mut out, "    ");
        let _ = writeln!(out, "  }};\n}}\n");
        let _ = writeln!(out, "function encode{name}(value: {name}): string {{");
        let _ = writeln!(out, "  const parts: string[] = [];");
        self.encoded(&list, "value", &mut out);
        let _ = writeln!(out, "  return `{{${{parts.join(\",\")}}}}`;\n}}\n");
        let _ = writeln!(
            out,
            "function check{name}(cx: rt.Checker, value: {name}, now: number): void {{"
        );
        if !uses_now(fields) {
            let _ = writeln!(out, "  void now;");
        }
        for f in fields {
            self.field_checks(
                f,
                f.required,
                "required field is missing",
                &[],
                "value",
                &mut out,
            );
        }
        let _ = writeln!(out, "}}\n");
        out
    }

    // ----- the event ---------------------------------------------------------------------------

    /// The fields of one event shape: envelope (variant-required ones required) then payload.
    fn event_fields(&self, variant: Option<&'c Variant>) -> Vec<(&'c Field, bool)> {
        let c = self.contract;
        let mut list: Vec<(&Field, bool)> = c
            .fields
            .iter()
            .map(|f| {
                let required = f.required || variant.is_some_and(|v| v.require.contains(&f.name));
                (f, required)
            })
            .collect();
        if let Some(v) = variant {
            list.extend(v.fields.iter().map(|f| (f, f.required)));
        }
        list
    }

    /// Interface, constructor, decode branch, encode function and check function of one shape.
    fn event_shape(
        &mut self,
        type_name: &str,
        variant: Option<&'c Variant>,
        out: &mut String,
        decode_out: &mut String,
    ) {
        let c = self.contract;
        let disc = c.variants.as_ref().map(|v| v.discriminator.as_str());
        let fields = self.event_fields(variant);
        // Interface: the discriminator as its literal type.
        match variant {
            Some(v) => {
                let _ = writeln!(
                    out,
                    "/** `{}: {}`{} */",
                    disc.unwrap_or_default(),
                    doc_text(&v.value),
                    v.description
                        .as_ref()
                        .map(|d| format!(": {}", doc_text(d)))
                        .unwrap_or_default()
                );
            }
            None => {
                let _ = writeln!(out, "/** One `{}` event. */", c.name);
            }
        }
        let _ = writeln!(out, "export interface {type_name} {{");
        let mut props = String::new();
        self.properties(&fields, &mut props);
        if let (Some(d), Some(v)) = (disc, variant) {
            // Replace the discriminator's `string` with the case's literal.
            props = props.replace(
                &format!("  {d}: string;\n"),
                &format!("  {d}: {};\n", lit(&v.value)),
            );
        }
        out.push_str(&props);
        let _ = writeln!(out, "}}\n");

        // Constructor.
        match (disc, variant) {
            (Some(d), Some(v)) => {
                let _ = writeln!(
                    out,
                    "/** A `{}` event: every required field is a required property. */",
                    doc_text(&v.value)
                );
                let _ = writeln!(
                    out,
                    "export function make{type_name}(fields: Omit<{type_name}, {}>): {type_name} {{",
                    lit(d)
                );
                let _ = writeln!(
                    out,
                    "  return {{ ...fields, {}{d}: {} }};\n}}\n",
                    self.event_id_default(),
                    lit(&v.value)
                );
            }
            _ => {
                let _ = writeln!(
                    out,
                    "/** An event: every required field is a required property. */"
                );
                let _ = writeln!(
                    out,
                    "export function make{type_name}(fields: {type_name}): {type_name} {{"
                );
                let id = self.event_id_default();
                let id = id.trim_end_matches(", ");
                let sep = if id.is_empty() { "" } else { ", " };
                let _ = writeln!(out, "  return {{ ...fields{sep}{id} }};\n}}\n");
            }
        }

        // Encode.
        let _ = writeln!(
            out,
            "function encode{type_name}(event: {type_name}): string {{"
        );
        let _ = writeln!(out, "  const parts: string[] = [];");
        self.encoded(&fields, "event", out);
        let _ = writeln!(out, "  return `{{${{parts.join(\",\")}}}}`;\n}}\n");

        // Check.
        let _ = writeln!(
            out,
            "function check{type_name}(cx: rt.Checker, event: {type_name}, now: number): void {{"
        );
        let all: Vec<Field> = fields.iter().map(|(f, _)| (*f).clone()).collect();
        if !uses_now(&all)
            && !variant.is_some_and(|v| v.rules.iter().any(|(_, r)| rules_use_now(r)))
        {
            let _ = writeln!(out, "  void now;");
        }
        let envelope_count = c.fields.len();
        for (index, (field, required)) in fields.iter().enumerate() {
            let in_payload = index >= envelope_count;
            let extra: Vec<Rule> = variant
                .and_then(|v| v.rules.iter().find(|(n, _)| *n == field.name))
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let made_required = !field.required && *required;
            let message = match variant {
                Some(v) if in_payload || made_required => {
                    format!("required for variant {}", lit(&v.value))
                }
                _ => "required field is missing".to_string(),
            };
            if Some(field.name.as_str()) == disc {
                continue;
            }
            self.field_checks(field, *required, &message, &extra, "event", out);
        }
        let _ = writeln!(out, "}}\n");

        // Decode branch.
        let names: Vec<&str> = fields.iter().map(|(f, _)| f.name.as_str()).collect();
        let indent = if variant.is_some() { "      " } else { "    " };
        let _ = writeln!(
            decode_out,
            "{}const o = rt.read.object(root, {});",
            &indent[2..],
            self.allowed_keys(&names)
        );
        let _ = writeln!(decode_out, "{}return {{", &indent[2..]);
        let mut decoded = String::new();
        let without_disc: Vec<(&Field, bool)> = fields
            .iter()
            .filter(|(f, _)| Some(f.name.as_str()) != disc)
            .copied()
            .collect();
        self.decoded(&without_disc, &mut decoded, indent);
        decode_out.push_str(&decoded);
        if let (Some(d), Some(v)) = (disc, variant) {
            let _ = writeln!(decode_out, "{indent}{d}: {},", lit(&v.value));
        }
        let _ = writeln!(decode_out, "{}}};", &indent[2..]);
    }

    /// `id: fields.id ?? rt.uuidv7(), ` for the contract's deduplication id (empty without
    /// one): an event gets its id when it is made, so every send of it carries the same.
    fn event_id_default(&self) -> String {
        self.contract
            .ingest
            .dedup
            .as_ref()
            .map(|d| format!("{0}: fields.{0} ?? rt.uuidv7(), ", d.field))
            .unwrap_or_default()
    }

    fn render(mut self) -> String {
        let c = self.contract;
        let mut body = String::new();
        let mut decode = String::new();
        let mut shapes: Vec<(String, String)> = Vec::new();
        match &c.variants {
            Some(variants) => {
                for case in &variants.cases {
                    let name = format!("{}Event", case.ident);
                    let mut branch = String::new();
                    self.event_shape(&name, Some(case), &mut body, &mut branch);
                    shapes.push((case.value.clone(), name));
                    let _ = writeln!(decode, "    case {}: {{", lit(&case.value));
                    decode.push_str(&branch);
                    let _ = writeln!(decode, "    }}");
                }
            }
            None => {
                self.event_shape("Event", None, &mut body, &mut decode);
            }
        }

        let mut out = super::header("//", &c.source.path);
        let _ = writeln!(
            out,
            "/**\n * Contract `{}` {}, owned by {}: typed events, local validation and the sender.",
            c.name,
            c.version,
            doc_text(&c.owner)
        );
        if let Some(d) = &c.description {
            let _ = writeln!(out, " *\n * {}", doc_text(d));
        }
        let _ = writeln!(out, " */\n");
        let _ = writeln!(out, "import * as rt from \"./contractc-runtime.js\";\n");
        let _ = writeln!(
            out,
            "export {{ BatchError, ContractClient, ContractViolationError, DecodeError, FileStore, HttpError, MemoryStore, localWallClock, verdictOf, webStorage }} from \"./contractc-runtime.js\";"
        );
        let _ = writeln!(
            out,
            "export type {{ BatchEventResult, BatchOutcome, BatchResult, ClientOptions, FlushResult, KeyValueStore, SendResult, Violation }} from \"./contractc-runtime.js\";\n"
        );
        let _ = writeln!(out, "/** The contract's name. */");
        let _ = writeln!(out, "export const NAME = {};", lit(&c.name));
        let _ = writeln!(
            out,
            "/** The contract version this module was generated from (sent as `X-Contract-Version`). */"
        );
        let _ = writeln!(
            out,
            "export const VERSION = {};",
            lit(&c.version.to_string())
        );
        let _ = writeln!(out, "/** SHA-256 of the contract file. */");
        let _ = writeln!(
            out,
            "export const FINGERPRINT = {};\n",
            lit(&c.source.fingerprint)
        );
        for s in &self.statics {
            out.push_str(s);
        }
        if !self.statics.is_empty() {
            out.push('\n');
        }
        for s in &self.struct_code {
            out.push_str(s);
        }
        out.push_str(&body);

        // The union, validate, encode, decode.
        if let Some(variants) = &c.variants {
            let names: Vec<&str> = shapes.iter().map(|(_, n)| n.as_str()).collect();
            let _ = writeln!(
                out,
                "/** Any `{}` event, by `{}`. */",
                c.name, variants.discriminator
            );
            let _ = writeln!(out, "export type Event = {};\n", names.join(" | "));
        }
        let disc = c.variants.as_ref().map(|v| v.discriminator.clone());
        let unknown_variant = c
            .variants
            .as_ref()
            .map(|v| super::messages::unknown_variant(&v.discriminator, &v.cases));
        let _ = writeln!(
            out,
            "/**\n * Every violation the server would report for the rules a typed event can break, with\n * the same code, path, policy and message. `now` stands for the server's ingest time.\n */"
        );
        let _ = writeln!(
            out,
            "export function validate(event: Event, now: Date = new Date()): rt.Violation[] {{"
        );
        let _ = writeln!(out, "  const cx = new rt.Checker();");
        let _ = writeln!(out, "  const nowMicros = now.getTime() * 1000;");
        match &disc {
            Some(d) => {
                let _ = writeln!(out, "  switch (event.{d}) {{");
                for (value, name) in &shapes {
                    let _ = writeln!(out, "    case {}:", lit(value));
                    let _ = writeln!(out, "      check{name}(cx, event, nowMicros);");
                    let _ = writeln!(out, "      break;");
                }
                // Only JavaScript callers reach `default`; the message does not quote the value.
                let _ = writeln!(out, "    default: {{");
                let _ = writeln!(out, "      const other: never = event;");
                let _ = writeln!(out, "      void other;");
                let _ = writeln!(
                    out,
                    "      cx.report(\"one_of\", {}, \"reject\", {});",
                    lit(d),
                    lit(unknown_variant.as_deref().unwrap_or_default())
                );
                let _ = writeln!(out, "    }}");
                let _ = writeln!(out, "  }}");
            }
            None => {
                let _ = writeln!(out, "  checkEvent(cx, event, nowMicros);");
            }
        }
        let _ = writeln!(out, "  return cx.violations;\n}}\n");

        let _ = writeln!(out, "/** The event as the JSON body the server expects. */");
        let _ = writeln!(out, "export function encode(event: Event): string {{");
        match &disc {
            Some(d) => {
                let _ = writeln!(out, "  switch (event.{d}) {{");
                for (value, name) in &shapes {
                    let _ = writeln!(out, "    case {}:", lit(value));
                    let _ = writeln!(out, "      return encode{name}(event);");
                }
                let _ = writeln!(out, "  }}");
            }
            None => {
                let _ = writeln!(out, "  return encodeEvent(event);");
            }
        }
        let _ = writeln!(out, "}}\n");

        let _ = writeln!(
            out,
            "/**\n * A JSON body as a typed event; throws `DecodeError` when the types cannot hold it (wrong\n * JSON types, unknown or duplicate keys, missing required fields, unknown variants,\n * unparseable timestamps). Then `validate` judges the rules.\n */"
        );
        let _ = writeln!(out, "export function decode(text: string): Event {{");
        let _ = writeln!(out, "  const root = rt.parseJson(text);");
        match &disc {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  const kind = rt.read.required(rt.read.object(root, null).get({}), rt.read.string);",
                    lit(d)
                );
                let _ = writeln!(out, "  switch (kind) {{");
                out.push_str(&decode);
                let _ = writeln!(out, "    default:");
                let _ = writeln!(
                    out,
                    "      throw new rt.DecodeError(`unknown {d} ${{rt.quote(kind)}}`);"
                );
                let _ = writeln!(out, "  }}");
            }
            None => out.push_str(&decode),
        }
        let _ = writeln!(out, "}}\n");

        let _ = writeln!(out, "/** The contract as the client needs it. */");
        let _ = writeln!(out, "export const CONTRACT: rt.ContractInfo<Event> = {{");
        let _ = writeln!(out, "  name: NAME,");
        let _ = writeln!(out, "  version: VERSION,");
        let _ = writeln!(out, "  route: {},", lit(&c.ingest.route));
        let _ = writeln!(
            out,
            "  batchRoute: {},",
            c.ingest
                .batch_route
                .as_deref()
                .map_or_else(|| "null".to_string(), lit)
        );
        let _ = writeln!(out, "  maxBodyBytes: {},", c.ingest.max_body_bytes);
        let _ = writeln!(out, "  maxBatchEvents: {},", c.ingest.max_batch_events);
        let _ = writeln!(out, "  validate,");
        let _ = writeln!(out, "  encode,");
        let _ = writeln!(out, "}};\n");
        let _ = writeln!(
            out,
            "/** A client for this contract: `createClient({{ baseUrl: \"https://host/prod/\" }})`. */"
        );
        let _ = writeln!(
            out,
            "export function createClient(options: rt.ClientOptions): rt.ContractClient<Event> {{"
        );
        let _ = writeln!(
            out,
            "  return new rt.ContractClient(CONTRACT, options);\n}}"
        );
        out
    }
}

fn rules_use_now(rules: &[Rule]) -> bool {
    rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::NotBefore(_) | RuleKind::NotAfter(_)))
}

/// Whether checking these fields compares with `now` (time rules, or a nested struct: its check
/// takes `now` whether it uses it or not).
fn uses_now(fields: &[Field]) -> bool {
    fields
        .iter()
        .any(|f| rules_use_now(&f.rules) || type_uses_now(&f.ty))
}

fn type_uses_now(ty: &Type) -> bool {
    match ty {
        Type::List(e) => rules_use_now(&e.rules) || type_uses_now(&e.ty),
        Type::Map { key, value } => {
            rules_use_now(&key.rules) || rules_use_now(&value.rules) || type_uses_now(&value.ty)
        }
        Type::Struct(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    /// The runtime splits batches into requests the deployed API takes (Kinesis `PutRecords`).
    #[test]
    fn batch_requests_fit_the_deployed_api() {
        let line = format!(
            "export const MAX_EVENTS_PER_BATCH_REQUEST = {};",
            super::super::apigateway::PUT_RECORDS_MAX
        );
        assert!(super::RUNTIME.contains(&line), "{line}");
    }
}
