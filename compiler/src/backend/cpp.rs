//! The Unreal client: an engine-free C++17 core per contract (a struct per variant with required
//! fields as constructor parameters, `validate` with the server's codes, paths, policies and
//! messages, JSON writing, `decode`, and the header-only runtime: identity, retry, persistent
//! queue, batching, sender over a transport interface, plus a libcurl transport), and a thin
//! Unreal module over it (`FHttpModule` transport, a Blueprint-callable subsystem sending JSON
//! built by the core). The core is compiled and tested with g++; the module needs the engine.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::{GeneratedFile, made_with_the_event};
use crate::ir::{
    Bound, Contract, ContractSet, Field, FormatItem, Literal, Rule, RuleKind, TimestampFormat,
    Type, UnknownFields, Valid, Variant,
};

const RUNTIME: &str = include_str!("../../templates/cpp/contractc_runtime.hpp");
const CURL: &str = include_str!("../../templates/cpp/contractc_curl.hpp");

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        let namespace = format!("contractc_{}", c.name);
        let dir = format!("{}/clients/unreal", c.name);
        let header = super::header("//", &c.source.path);
        files.push(GeneratedFile::new(
            format!("{dir}/core/contractc_runtime.hpp"),
            format!("{header}{}", RUNTIME.replace("__NAMESPACE__", &namespace)),
        ));
        files.push(GeneratedFile::new(
            format!("{dir}/core/contractc_curl.hpp"),
            format!("{header}{}", CURL.replace("__NAMESPACE__", &namespace)),
        ));
        files.push(GeneratedFile::new(
            format!("{dir}/core/{}.hpp", c.name),
            Module::new(c, &namespace).render(),
        ));
        files.extend(unreal_module(c, &namespace, &dir));
    }
    files
}

/// A C++ string literal.
fn lit(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '?' => out.push_str("\\?"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\x{:02x}\"\"", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn pascal(name: &str) -> String {
    let mut out: String = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut chars = p.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, 'V');
    }
    out
}

const KEYWORDS: &[&str] = &[
    "alignas",
    "alignof",
    "and",
    "and_eq",
    "asm",
    "auto",
    "bitand",
    "bitor",
    "bool",
    "break",
    "case",
    "catch",
    "char",
    "class",
    "compl",
    "const",
    "constexpr",
    "const_cast",
    "continue",
    "decltype",
    "default",
    "delete",
    "do",
    "double",
    "dynamic_cast",
    "else",
    "enum",
    "explicit",
    "export",
    "extern",
    "false",
    "float",
    "for",
    "friend",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "nullptr",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "register",
    "reinterpret_cast",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "static_assert",
    "static_cast",
    "struct",
    "switch",
    "template",
    "this",
    "thread_local",
    "throw",
    "true",
    "try",
    "typedef",
    "typeid",
    "typename",
    "union",
    "unsigned",
    "using",
    "virtual",
    "void",
    "volatile",
    "wchar_t",
    "while",
    "xor",
    "xor_eq",
    "char8_t",
    "char16_t",
    "char32_t",
    "concept",
    "requires",
    "co_await",
    "co_return",
    "co_yield",
    "consteval",
    "constinit",
    "final",
    "override",
    "rt",
    "std",
];

/// A member name: the field name, with `_` after a C++ keyword.
fn member(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

fn policy(rule: &Rule) -> &'static str {
    match rule.policy {
        crate::ir::Policy::Reject => "rt::Policy::Reject",
        crate::ir::Policy::Quarantine => "rt::Policy::Quarantine",
        crate::ir::Policy::Warn => "rt::Policy::Warn",
    }
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

struct Module<'c> {
    contract: &'c Contract,
    namespace: String,
    patterns: BTreeMap<String, String>,
    formats: BTreeMap<String, (String, String)>,
    names: BTreeMap<u32, String>,
    used: BTreeSet<String>,
    structs: Vec<String>,
    counter: usize,
}

struct Shape<'v> {
    fields: Vec<(Field, bool)>,
    variant: Option<&'v Variant>,
    discriminator: Option<&'v str>,
}

impl<'c> Module<'c> {
    fn new(contract: &'c Contract, namespace: &str) -> Self {
        let mut used: BTreeSet<String> = ["Event", "Contract"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(v) = &contract.variants {
            for case in &v.cases {
                used.insert(format!("{}Event", case.ident));
            }
        }
        Module {
            contract,
            namespace: namespace.to_string(),
            patterns: BTreeMap::new(),
            formats: BTreeMap::new(),
            names: BTreeMap::new(),
            used,
            structs: Vec::new(),
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
        let name = format!("pattern_{}()", self.patterns.len());
        self.patterns.insert(pattern.to_string(), name.clone());
        name
    }

    fn format(&mut self, format: &TimestampFormat) -> String {
        if let Some((name, _)) = self.formats.get(&format.pattern) {
            return name.clone();
        }
        let name = format!("format_{}()", self.formats.len());
        let items: Vec<String> = format
            .items
            .iter()
            .map(|item| match item {
                FormatItem::Literal(text) => format!("{{0, {}}}", lit(text)),
                FormatItem::Year => "{'Y', nullptr}".into(),
                FormatItem::Month => "{'m', nullptr}".into(),
                FormatItem::Day => "{'d', nullptr}".into(),
                FormatItem::Hour => "{'H', nullptr}".into(),
                FormatItem::Minute => "{'M', nullptr}".into(),
                FormatItem::Second => "{'S', nullptr}".into(),
                FormatItem::Fraction => "{'f', nullptr}".into(),
            })
            .collect();
        self.formats
            .insert(format.pattern.clone(), (name.clone(), items.join(", ")));
        name
    }

    fn struct_name(&mut self, id: u32, hint: &str, fields: &[Field]) -> String {
        if let Some(name) = self.names.get(&id) {
            return name.clone();
        }
        let mut name = pascal(hint);
        if self.used.contains(&name) {
            name = format!("{name}{id}");
        }
        self.used.insert(name.clone());
        self.names.insert(id, name.clone());
        let list: Vec<(Field, bool)> = fields.iter().map(|f| (f.clone(), f.required)).collect();
        let code = self.record(
            &name,
            Shape {
                fields: list,
                variant: None,
                discriminator: None,
            },
            false,
        );
        self.structs.push(code);
        name
    }

    fn cpp_type(&mut self, ty: &Type, id: u32, hint: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date | Type::Decimal { .. } => "std::string".into(),
            Type::Boolean => "bool".into(),
            Type::Int => "std::int32_t".into(),
            Type::Long => "std::int64_t".into(),
            Type::Float => "float".into(),
            Type::Double => "double".into(),
            Type::Timestamp { .. } => "rt::Timestamp".into(),
            Type::TimestampTz => "rt::TimestampTz".into(),
            Type::List(e) => {
                let inner = self.element_type(&e.ty, e.id, &format!("{hint}_item"), e.required);
                format!("std::vector<{inner}>")
            }
            Type::Map { value, .. } => {
                let inner = self.element_type(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    value.required,
                );
                format!("std::map<std::string, {inner}>")
            }
            Type::Struct(fields) => self.struct_name(id, hint, fields),
        }
    }

    fn element_type(&mut self, ty: &Type, id: u32, hint: &str, required: bool) -> String {
        let inner = self.cpp_type(ty, id, hint);
        if required {
            inner
        } else {
            format!("std::optional<{inner}>")
        }
    }

    /// An expression reading the `rt::Json` expression `j` (present) as `ty`.
    fn reader(&mut self, ty: &Type, id: u32, hint: &str, j: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date => format!("rt::read::string({j})"),
            Type::Decimal { .. } => format!("rt::read::decimal({j})"),
            Type::Boolean => format!("rt::read::boolean({j})"),
            Type::Int => format!("rt::read::int_({j})"),
            Type::Long => format!("rt::read::long_({j})"),
            Type::Float => format!("rt::read::float_({j})"),
            Type::Double => format!("rt::read::double_({j})"),
            Type::Timestamp { format } => {
                let f = self.format(format);
                format!("rt::read::timestamp({j}, {f})")
            }
            Type::TimestampTz => format!("rt::read::timestamptz({j})"),
            Type::List(e) => {
                let t = self.element_type(&e.ty, e.id, &format!("{hint}_item"), e.required);
                let v = self.fresh("j");
                let inner =
                    self.element_reader(&e.ty, e.id, &format!("{hint}_item"), e.required, &v);
                format!(
                    "rt::read::list<{t}>({j}, [](const rt::Json& {v}) -> {t} {{ return {inner}; }})"
                )
            }
            Type::Map { value, .. } => {
                let t = self.element_type(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    value.required,
                );
                let v = self.fresh("j");
                let inner = self.element_reader(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    value.required,
                    &v,
                );
                format!(
                    "rt::read::map<{t}>({j}, [](const rt::Json& {v}) -> {t} {{ return {inner}; }})"
                )
            }
            Type::Struct(fields) => {
                let name = self.struct_name(id, hint, fields);
                format!("decode_{name}({j})")
            }
        }
    }

    fn element_reader(
        &mut self,
        ty: &Type,
        id: u32,
        hint: &str,
        required: bool,
        v: &str,
    ) -> String {
        let inner = self.reader(ty, id, hint, v);
        if required {
            inner
        } else {
            let t = self.element_type(ty, id, hint, false);
            format!("{v}.kind == rt::Json::Kind::Null ? {t}() : {t}({inner})")
        }
    }

    /// An expression writing `x` (present) as JSON.
    fn writer(&mut self, ty: &Type, id: u32, hint: &str, x: &str) -> String {
        match ty {
            Type::String | Type::Uuid | Type::Date | Type::Decimal { .. } => {
                format!("rt::quote({x})")
            }
            Type::Boolean => format!("rt::boolean({x})"),
            Type::Int | Type::Long => format!("rt::number(static_cast<std::int64_t>({x}))"),
            Type::Float => format!("rt::number(static_cast<float>({x}))"),
            Type::Double => format!("rt::number(static_cast<double>({x}))"),
            Type::Timestamp { format } => {
                let f = self.format(format);
                format!("rt::quote(rt::format_timestamp({x}, {f}))")
            }
            Type::TimestampTz => format!("rt::quote(rt::format_rfc3339({x}))"),
            Type::List(e) => {
                let t = self.element_type(&e.ty, e.id, &format!("{hint}_item"), e.required);
                let v = self.fresh("w");
                let inner =
                    self.element_writer(&e.ty, e.id, &format!("{hint}_item"), e.required, &v);
                format!("rt::write::list({x}, [](const {t}& {v}) {{ return {inner}; }})")
            }
            Type::Map { value, .. } => {
                let t = self.element_type(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    value.required,
                );
                let v = self.fresh("w");
                let inner = self.element_writer(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    value.required,
                    &v,
                );
                format!("rt::write::map({x}, [](const {t}& {v}) {{ return {inner}; }})")
            }
            Type::Struct(fields) => {
                self.struct_name(id, hint, fields);
                format!("to_json({x})")
            }
        }
    }

    fn element_writer(
        &mut self,
        ty: &Type,
        id: u32,
        hint: &str,
        required: bool,
        v: &str,
    ) -> String {
        if required {
            self.writer(ty, id, hint, v)
        } else {
            let inner = self.writer(ty, id, hint, &format!("(*{v})"));
            format!("{v} ? {inner} : std::string(\"null\")")
        }
    }

    /// Statements checking `x` (present) against `rules`.
    #[allow(clippy::too_many_arguments)]
    fn checks(
        &mut self,
        ty: &Type,
        id: u32,
        hint: &str,
        rules: &[Rule],
        x: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let f = field.map_or_else(|| "nullptr".to_string(), lit);
        let inner = format!("{indent}    ");
        match ty {
            Type::String | Type::Int | Type::Long => {
                self.rule_checks(ty, rules, x, &f, out, indent)
            }
            Type::Boolean => {}
            Type::Uuid => {
                let _ = writeln!(out, "{indent}rt::check_uuid(cx, {f}, {x});");
            }
            Type::Float | Type::Double => {
                let _ = writeln!(
                    out,
                    "{indent}if (rt::check_number(cx, {f}, static_cast<double>({x}))) {{"
                );
                self.rule_checks(
                    ty,
                    rules,
                    &format!("static_cast<double>({x})"),
                    &f,
                    out,
                    &inner,
                );
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Decimal { precision, scale } => {
                let d = self.fresh("d");
                let _ = writeln!(
                    out,
                    "{indent}if (auto {d} = rt::check_decimal(cx, {f}, {x}, {precision}, {scale})) {{"
                );
                if rules.is_empty() {
                    let _ = writeln!(out, "{inner}(void){d};");
                }
                self.rule_checks(ty, rules, &format!("(*{d})"), &f, out, &inner);
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Date => {
                let d = self.fresh("day");
                let _ = writeln!(
                    out,
                    "{indent}if (auto {d} = rt::check_date(cx, {f}, {x})) {{"
                );
                if rules.is_empty() {
                    let _ = writeln!(out, "{inner}(void){d};");
                }
                self.rule_checks(
                    ty,
                    rules,
                    &format!("(*{d} * 86400000000LL)"),
                    &f,
                    out,
                    &inner,
                );
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Timestamp { .. } | Type::TimestampTz => {
                self.rule_checks(ty, rules, &format!("{x}.micros"), &f, out, indent)
            }
            Type::List(e) => {
                let i = self.fresh("i");
                let mut body = String::new();
                let item = format!("{x}[{i}]");
                self.element_checks(
                    &e.ty,
                    e.id,
                    &format!("{hint}_item"),
                    &e.rules,
                    e.required,
                    &item,
                    &mut body,
                    &format!("{inner}    "),
                );
                if body.is_empty() && rules.is_empty() {
                    return;
                }
                let _ = writeln!(out, "{indent}{{");
                if !body.is_empty() {
                    if let Some(name) = field {
                        let _ = writeln!(out, "{inner}cx.enter_key({});", lit(name));
                    }
                    let _ = writeln!(
                        out,
                        "{inner}for (std::size_t {i} = 0; {i} < {x}.size(); ++{i}) {{"
                    );
                    let _ = writeln!(out, "{inner}    cx.enter_index({i});");
                    out.push_str(&body);
                    let _ = writeln!(out, "{inner}    cx.leave();");
                    let _ = writeln!(out, "{inner}}}");
                    if field.is_some() {
                        let _ = writeln!(out, "{inner}cx.leave();");
                    }
                }
                self.rule_checks(ty, rules, &format!("{x}.size()"), &f, out, &inner);
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Map { key, value } => {
                let kv = self.fresh("kv");
                let mut body = String::new();
                self.checks(
                    &key.ty,
                    key.id,
                    &format!("{hint}_key"),
                    &key.rules,
                    &format!("{kv}.first"),
                    None,
                    &mut body,
                    &format!("{inner}    "),
                );
                self.element_checks(
                    &value.ty,
                    value.id,
                    &format!("{hint}_value"),
                    &value.rules,
                    value.required,
                    &format!("{kv}.second"),
                    &mut body,
                    &format!("{inner}    "),
                );
                if body.is_empty() && rules.is_empty() {
                    return;
                }
                let _ = writeln!(out, "{indent}{{");
                if !body.is_empty() {
                    if let Some(name) = field {
                        let _ = writeln!(out, "{inner}cx.enter_key({});", lit(name));
                    }
                    let _ = writeln!(out, "{inner}for (const auto& {kv} : {x}) {{");
                    let _ = writeln!(out, "{inner}    cx.enter_key({kv}.first);");
                    out.push_str(&body);
                    let _ = writeln!(out, "{inner}    cx.leave();");
                    let _ = writeln!(out, "{inner}}}");
                    if field.is_some() {
                        let _ = writeln!(out, "{inner}cx.leave();");
                    }
                }
                self.rule_checks(ty, rules, &format!("{x}.size()"), &f, out, &inner);
                let _ = writeln!(out, "{indent}}}");
            }
            Type::Struct(fields) => {
                self.struct_name(id, hint, fields);
                if let Some(name) = field {
                    let _ = writeln!(out, "{indent}cx.enter_key({});", lit(name));
                }
                let _ = writeln!(out, "{indent}check(cx, {x}, now);");
                if field.is_some() {
                    let _ = writeln!(out, "{indent}cx.leave();");
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn element_checks(
        &mut self,
        ty: &Type,
        id: u32,
        hint: &str,
        rules: &[Rule],
        required: bool,
        x: &str,
        out: &mut String,
        indent: &str,
    ) {
        if required {
            self.checks(ty, id, hint, rules, x, None, out, indent);
            return;
        }
        let mut body = String::new();
        self.checks(
            ty,
            id,
            hint,
            rules,
            &format!("(*{x})"),
            None,
            &mut body,
            &format!("{indent}    "),
        );
        if !body.is_empty() {
            let _ = writeln!(out, "{indent}if ({x}) {{");
            out.push_str(&body);
            let _ = writeln!(out, "{indent}}}");
        }
    }

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
                            format!("{v} {op} {}.0L", decimal_bound(*b, *scale, is_min))
                        }
                        (Type::Int | Type::Long, Bound::Int(i)) => format!("{v} {op} {i}LL"),
                        (_, b) => format!("{v} {op} {:?}", b.as_f64()),
                    }
                }
                RuleKind::MinLength(n) | RuleKind::MaxLength(n) => {
                    let op = if matches!(rule.kind, RuleKind::MinLength(_)) {
                        "<"
                    } else {
                        ">"
                    };
                    if matches!(ty, Type::String) {
                        format!("rt::char_length({v}) {op} {n}u")
                    } else {
                        format!("{v} {op} {n}u")
                    }
                }
                RuleKind::Pattern(p) => {
                    let name = self.pattern(p);
                    format!("!std::regex_match({v}, {name})")
                }
                RuleKind::OneOf(values) => {
                    let shown: Vec<String> = values
                        .iter()
                        .map(|l| match l {
                            Literal::String(s) => format!("std::string({})", lit(s)),
                            Literal::Int(i) => format!("{i}LL"),
                        })
                        .collect();
                    let array = if matches!(ty, Type::String) {
                        format!("std::vector<std::string>{{{}}}", shown.join(", "))
                    } else {
                        format!("std::vector<long long>{{{}}}", shown.join(", "))
                    };
                    let var = self.fresh("allowed");
                    let _ = writeln!(out, "{indent}const auto {var} = {array};");
                    format!("std::find({var}.begin(), {var}.end(), {v}) == {var}.end()")
                }
                RuleKind::NotBefore(bound) => {
                    format!("{v} < now + {}LL", bound.earliest_offset() * 1_000_000)
                }
                RuleKind::NotAfter(bound) => {
                    format!("{v} > now + {}LL", bound.latest_offset() * 1_000_000)
                }
            };
            let message = super::messages::rule_message(rule, ty);
            let _ = writeln!(
                out,
                "{indent}if ({failed}) cx.report({}, {f}, {}, {});",
                lit(rule.kind.key()),
                policy(rule),
                lit(&message)
            );
        }
    }

    /// A struct (or event struct) with its constructor, `to_json`, `check` and decoder.
    fn record(&mut self, name: &str, shape: Shape<'_>, is_event: bool) -> String {
        let c = self.contract;
        let disc = shape.discriminator;
        let mut members = Vec::new();
        let mut out = String::new();
        let mut body = String::new();
        for (field, required) in &shape.fields {
            if Some(field.name.as_str()) == disc {
                let value = shape.variant.map(|v| v.value.clone()).unwrap_or_default();
                let _ = writeln!(
                    body,
                    "    /// The discriminator `{}` of this variant.",
                    field.name
                );
                let _ = writeln!(
                    body,
                    "    static constexpr const char* {} = {};",
                    member(&field.name),
                    lit(&value)
                );
                continue;
            }
            let base = self.cpp_type(&field.ty, field.id, &field.name);
            let ty = if *required {
                base.clone()
            } else {
                format!("std::optional<{base}>")
            };
            let initial = made_with_the_event(c, is_event, field, "rt::uuid_v7()");
            let _ = writeln!(body, "    /// {}", member_doc(field));
            let _ = writeln!(body, "    {ty} {}{initial};", member(&field.name));
            members.push((field.clone(), *required, base, ty));
        }
        match shape.variant {
            Some(v) => {
                let _ = writeln!(
                    out,
                    "/// `{}: {}`",
                    disc.unwrap_or_default(),
                    v.value.replace('\n', " ")
                );
            }
            None if is_event => {
                let _ = writeln!(out, "/// One `{}` event.", c.name);
            }
            None => {}
        }
        let _ = writeln!(out, "struct {name} {{");
        out.push_str(&body);
        let params: Vec<String> = members
            .iter()
            .filter(|(_, r, _, _)| *r)
            .map(|(f, _, base, _)| format!("{base} {}_", f.name))
            .collect();
        let inits: Vec<String> = members
            .iter()
            .filter(|(_, r, _, _)| *r)
            .map(|(f, _, _, _)| format!("{}(std::move({}_))", member(&f.name), f.name))
            .collect();
        let explicit = if params.len() == 1 { "explicit " } else { "" };
        if params.is_empty() {
            let _ = writeln!(out, "\n    {name}() = default;");
        } else {
            let _ = writeln!(
                out,
                "\n    /// Every required field is a parameter.\n    {explicit}{name}({})\n        : {} {{}}",
                params.join(", "),
                inits.join(", ")
            );
        }
        let _ = writeln!(out, "}};\n");

        // to_json
        let _ = writeln!(out, "/// The JSON the server expects.");
        let _ = writeln!(out, "inline std::string to_json(const {name}& value) {{");
        let _ = writeln!(out, "    std::vector<std::string> parts;");
        for (field, required) in &shape.fields {
            let key = lit(&format!("\"{}\":", field.name));
            let m = member(&field.name);
            if Some(field.name.as_str()) == disc {
                let _ = writeln!(
                    out,
                    "    parts.push_back(std::string({key}) + rt::quote({name}::{m}));"
                );
                continue;
            }
            if *required {
                let w = self.writer(&field.ty, field.id, &field.name, &format!("value.{m}"));
                let _ = writeln!(out, "    parts.push_back(std::string({key}) + {w});");
            } else {
                let w = self.writer(&field.ty, field.id, &field.name, &format!("(*value.{m})"));
                let _ = writeln!(
                    out,
                    "    if (value.{m}) parts.push_back(std::string({key}) + {w});"
                );
            }
        }
        let _ = writeln!(out, "    std::string out = \"{{\";");
        let _ = writeln!(
            out,
            "    for (std::size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? \",\" : \"\") + parts[i];"
        );
        let _ = writeln!(out, "    return out + \"}}\";\n}}\n");

        // check
        let _ = writeln!(
            out,
            "inline void check([[maybe_unused]] rt::Checker& cx, [[maybe_unused]] const {name}& value, [[maybe_unused]] std::int64_t now) {{"
        );
        for (field, required) in &shape.fields {
            if Some(field.name.as_str()) == disc {
                continue;
            }
            let extra: Vec<Rule> = shape
                .variant
                .and_then(|v| v.rules.iter().find(|(n, _)| *n == field.name))
                .map(|(_, r)| r.clone())
                .unwrap_or_default();
            let mut rules = field.rules.clone();
            rules.extend(extra);
            let m = member(&field.name);
            let x = if *required {
                format!("value.{m}")
            } else {
                format!("(*value.{m})")
            };
            let mut checks = String::new();
            self.checks(
                &field.ty,
                field.id,
                &field.name,
                &rules,
                &x,
                Some(&field.name),
                &mut checks,
                "        ",
            );
            if checks.is_empty() {
                continue;
            }
            if *required {
                let _ = writeln!(out, "    {{");
            } else {
                let _ = writeln!(out, "    if (value.{m}) {{");
            }
            out.push_str(&checks);
            let _ = writeln!(out, "    }}");
        }
        let _ = writeln!(out, "}}\n");

        // decode
        let names: Vec<String> = shape.fields.iter().map(|(f, _)| lit(&f.name)).collect();
        let allowed = if c.ingest.unknown_fields == UnknownFields::Drop {
            "{}".to_string()
        } else {
            format!("{{{}}}", names.join(", "))
        };
        let _ = writeln!(out, "inline {name} decode_{name}(const rt::Json& value) {{");
        let _ = writeln!(
            out,
            "    const rt::Json& o = rt::read::object(value, {allowed});"
        );
        let args: Vec<String> = members
            .iter()
            .filter(|(_, r, _, _)| *r)
            .map(|(f, _, _, _)| f.clone())
            .collect::<Vec<_>>()
            .iter()
            .map(|f| {
                let get = format!("rt::read::required(o.get({}))", lit(&f.name));
                self.reader(&f.ty, f.id, &f.name, &get)
            })
            .collect();
        if args.is_empty() {
            let _ = writeln!(out, "    {name} result;");
        } else {
            let _ = writeln!(out, "    {name} result({});", args.join(", "));
        }
        for (f, required, _, _) in &members {
            if *required {
                continue;
            }
            let get = format!("o.get({})", lit(&f.name));
            let read = self.reader(&f.ty, f.id, &f.name, &format!("*{get}"));
            let _ = writeln!(
                out,
                "    if (rt::read::present({get})) result.{} = {read};",
                member(&f.name)
            );
        }
        if let (Some(d), Some(v)) = (disc, shape.variant) {
            let _ = writeln!(
                out,
                "    if (rt::read::string(rt::read::required(o.get({}))) != {}) throw rt::DecodeError(\"not this variant\");",
                lit(d),
                lit(&v.value)
            );
        }
        let _ = writeln!(out, "    return result;\n}}\n");
        out
    }

    fn event_fields(&self, variant: Option<&Variant>) -> Vec<(Field, bool)> {
        let mut list: Vec<(Field, bool)> = self
            .contract
            .fields
            .iter()
            .map(|f| {
                (
                    f.clone(),
                    f.required || variant.is_some_and(|v| v.require.contains(&f.name)),
                )
            })
            .collect();
        if let Some(v) = variant {
            list.extend(v.fields.iter().map(|f| (f.clone(), f.required)));
        }
        list
    }

    fn render(mut self) -> String {
        let c = self.contract;
        let disc = c.variants.as_ref().map(|v| v.discriminator.clone());
        let mut events = String::new();
        let mut shapes: Vec<(String, String)> = Vec::new();
        match &c.variants {
            Some(variants) => {
                for case in &variants.cases {
                    let name = format!("{}Event", case.ident);
                    let shape = Shape {
                        fields: self.event_fields(Some(case)),
                        variant: Some(case),
                        discriminator: disc.as_deref(),
                    };
                    events.push_str(&self.record(&name, shape, true));
                    shapes.push((case.value.clone(), name));
                }
            }
            None => {
                let shape = Shape {
                    fields: self.event_fields(None),
                    variant: None,
                    discriminator: None,
                };
                events.push_str(&self.record("Event", shape, true));
                shapes.push((String::new(), "Event".into()));
            }
        }

        let mut out = super::header("//", &c.source.path);
        let _ = writeln!(
            out,
            "// Contract `{}` {}, owned by {}: typed events, local validation and JSON (C++17, no engine).",
            c.name,
            c.version,
            c.owner.replace('\n', " ")
        );
        let _ = writeln!(out, "#pragma once\n\n#include \"contractc_runtime.hpp\"\n");
        let _ = writeln!(out, "namespace {} {{\n", self.namespace);
        let _ = writeln!(out, "inline constexpr const char* NAME = {};", lit(&c.name));
        let _ = writeln!(
            out,
            "/// Sent as `X-Contract-Version` with every request.\ninline constexpr const char* VERSION = {};",
            lit(&c.version.to_string())
        );
        let _ = writeln!(
            out,
            "inline constexpr const char* FINGERPRINT = {};\n",
            lit(&c.source.fingerprint)
        );
        for (pattern, name) in &self.patterns {
            let _ = writeln!(
                out,
                "/// `{}`, full-match (std::regex_match).\ninline const std::regex& {name} {{\n    static const std::regex re({}, std::regex::ECMAScript);\n    return re;\n}}\n",
                pattern.replace('\n', " "),
                lit(&format!("(?:{pattern})"))
            );
        }
        for (pattern, (name, items)) in &self.formats {
            let _ = writeln!(
                out,
                "/// The timestamp format `{}`.\ninline const std::vector<rt::FormatItem>& {name} {{\n    static const std::vector<rt::FormatItem> items = {{{items}}};\n    return items;\n}}\n",
                pattern.replace('\n', " ")
            );
        }
        for s in std::mem::take(&mut self.structs) {
            out.push_str(&s);
        }
        out.push_str(&events);

        if disc.is_some() {
            let names: Vec<&str> = shapes.iter().map(|(_, n)| n.as_str()).collect();
            let _ = writeln!(
                out,
                "/// Any `{}` event.\nusing Event = std::variant<{}>;\n",
                c.name,
                names.join(", ")
            );
            let _ = writeln!(
                out,
                "inline std::string to_json(const Event& event) {{\n    return std::visit([](const auto& e) {{ return to_json(e); }}, event);\n}}\n"
            );
            let _ = writeln!(
                out,
                "/// Every violation the server would report if it received the event at `now_micros` (UTC).\ninline std::vector<rt::Violation> validate(const Event& event, std::int64_t now_micros) {{\n    rt::Checker cx;\n    std::visit([&](const auto& e) {{ check(cx, e, now_micros); }}, event);\n    return cx.violations;\n}}\n"
            );
        } else {
            let _ = writeln!(
                out,
                "/// Every violation the server would report if it received the event at `now_micros` (UTC).\ninline std::vector<rt::Violation> validate(const Event& event, std::int64_t now_micros) {{\n    rt::Checker cx;\n    check(cx, event, now_micros);\n    return cx.violations;\n}}\n"
            );
        }
        let _ = writeln!(
            out,
            "/// A JSON body as a typed event; throws rt::DecodeError when the types cannot hold it."
        );
        let _ = writeln!(out, "inline Event decode(const std::string& json) {{");
        let _ = writeln!(out, "    const rt::Json root = rt::parse_json(json);");
        match &disc {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "    const std::string kind = rt::read::string(rt::read::required(rt::read::object(root, {{}}).get({})));",
                    lit(d)
                );
                for (value, name) in &shapes {
                    let _ = writeln!(
                        out,
                        "    if (kind == {}) return decode_{name}(root);",
                        lit(value)
                    );
                }
                let _ = writeln!(
                    out,
                    "    throw rt::DecodeError(\"unknown {d} \" + rt::quote(kind));"
                );
            }
            None => {
                let _ = writeln!(out, "    return decode_Event(root);");
            }
        }
        let _ = writeln!(out, "}}\n");
        let _ = writeln!(out, "/// The contract as the client needs it.");
        let _ = writeln!(out, "inline rt::ContractInfo<Event> contract() {{");
        let _ = writeln!(out, "    rt::ContractInfo<Event> info;");
        let _ = writeln!(out, "    info.name = NAME;\n    info.version = VERSION;");
        let _ = writeln!(out, "    info.route = {};", lit(&c.ingest.route));
        let _ = writeln!(
            out,
            "    info.batch_route = {};",
            lit(c.ingest.batch_route.as_deref().unwrap_or(""))
        );
        let _ = writeln!(
            out,
            "    info.max_batch_events = {};",
            c.ingest.max_batch_events
        );
        let _ = writeln!(
            out,
            "    info.max_body_bytes = {};",
            c.ingest.max_body_bytes
        );
        let _ = writeln!(
            out,
            "    info.validate = [](const Event& e, std::int64_t now) {{ return validate(e, now); }};"
        );
        let _ = writeln!(
            out,
            "    info.to_json = [](const Event& e) {{ return to_json(e); }};"
        );
        let _ = writeln!(out, "    return info;\n}}\n");
        let _ = writeln!(
            out,
            "/// A client: `Client client(options, transport); client.send(LoginEvent(...));`\nusing Client = rt::Client<Event>;\n\ninline Client make_client(rt::Options options, rt::Transport& transport) {{\n    return Client(contract(), std::move(options), transport);\n}}\n"
        );
        let _ = writeln!(out, "}}  // namespace {}", self.namespace);
        out
    }
}

/// The thin Unreal module: a transport over `FHttpModule` and a Blueprint-callable subsystem
/// that validates and queues events given as JSON objects. Typed C++ callers use the core's
/// structs directly.
fn unreal_module(c: &Contract, namespace: &str, dir: &str) -> Vec<GeneratedFile> {
    let module = format!("{}Telemetry", pascal(&c.name));
    let header = super::header("//", &c.source.path);
    let base = format!("{dir}/{module}");
    let build_cs = format!(
        "{header}using UnrealBuildTool;\n\n// The thin module over the engine-free core in ../core (compiled by the core's tests).\npublic class {module} : ModuleRules\n{{\n    public {module}(ReadOnlyTargetRules Target) : base(Target)\n    {{\n        PCHUsage = PCHUsageMode.UseExplicitOrSharedPCHs;\n        CppStandard = CppStandardVersion.Cpp17;\n        bEnableExceptions = true;\n        PublicIncludePaths.Add(System.IO.Path.Combine(ModuleDirectory, \"..\", \"core\"));\n        PublicDependencyModuleNames.AddRange(new string[] {{ \"Core\", \"CoreUObject\", \"Engine\", \"HTTP\" }});\n    }}\n}}\n"
    );
    let subsystem_h = format!(
        "{header}// Thin Unreal layer over the C++17 core ({core}.hpp): FHttpModule transport and a\n// Blueprint-callable subsystem. It cannot be compiled outside the engine; keep logic in the core.\n#pragma once\n\n#include \"CoreMinimal.h\"\n#include \"Subsystems/GameInstanceSubsystem.h\"\n#include \"{module}Subsystem.generated.h\"\n\n/** One violation, as the server reports it. */\nUSTRUCT(BlueprintType)\nstruct F{module}Violation\n{{\n    GENERATED_BODY()\n    UPROPERTY(BlueprintReadOnly) FString Code;\n    UPROPERTY(BlueprintReadOnly) FString Path;\n    UPROPERTY(BlueprintReadOnly) FString Policy;\n    UPROPERTY(BlueprintReadOnly) FString Message;\n}};\n\n/** Sends `{name}` events (contract version {version}). */\nUCLASS()\nclass U{module}Subsystem : public UGameInstanceSubsystem\n{{\n    GENERATED_BODY()\npublic:\n    /** Where to send: `https://host/prod/`. Call once before sending. */\n    UFUNCTION(BlueprintCallable, Category = \"Telemetry\")\n    void Configure(const FString& BaseUrl);\n\n    /** Decodes `EventJson` into the contract's types, validates it and queues it (persisted).\n     *  Returns false with the violations when the server would refuse it: it is never sent. */\n    UFUNCTION(BlueprintCallable, Category = \"Telemetry\")\n    bool Enqueue(const FString& EventJson, TArray<F{module}Violation>& Violations);\n\n    /** Sends the queue in batches (blocking: call from a worker or on quit). Returns how many\n     *  events the server answered for, or -1 when some could not be sent (they stay queued). */\n    UFUNCTION(BlueprintCallable, Category = \"Telemetry\")\n    int32 Flush();\n\n    virtual void Deinitialize() override;\n\nprivate:\n    TSharedPtr<class F{module}Client> Client;\n}};\n",
        core = c.name,
        name = c.name,
        version = c.version,
    );
    let subsystem_cpp = format!(
        "{header}#include \"{module}Subsystem.h\"\n\n#include \"HAL/PlatformProcess.h\"\n#include \"HttpModule.h\"\n#include \"Interfaces/IHttpResponse.h\"\n#include \"Misc/Paths.h\"\n\n#include \"{core}.hpp\"\n\nnamespace core = {namespace};\n\n/** The core's transport over FHttpModule (blocking wait: the core's client is synchronous). */\nclass FHttpModuleTransport : public core::rt::Transport\n{{\npublic:\n    core::rt::HttpAnswer send(const std::string& method, const std::string& url,\n        const std::vector<std::pair<std::string, std::string>>& headers, const std::string& content_type,\n        const std::string& body) override\n    {{\n        auto Request = FHttpModule::Get().CreateRequest();\n        Request->SetVerb(UTF8_TO_TCHAR(method.c_str()));\n        Request->SetURL(UTF8_TO_TCHAR(url.c_str()));\n        for (const auto& h : headers) Request->SetHeader(UTF8_TO_TCHAR(h.first.c_str()), UTF8_TO_TCHAR(h.second.c_str()));\n        if (!content_type.empty()) Request->SetHeader(TEXT(\"Content-Type\"), UTF8_TO_TCHAR(content_type.c_str()));\n        if (method == \"POST\") Request->SetContent(TArray<uint8>(reinterpret_cast<const uint8*>(body.data()), body.size()));\n        Request->ProcessRequest();\n        while (Request->GetStatus() == EHttpRequestStatus::Processing) FPlatformProcess::Sleep(0.01f);\n        FHttpResponsePtr Response = Request->GetResponse();\n        if (Request->GetStatus() != EHttpRequestStatus::Succeeded || !Response.IsValid())\n            throw core::rt::NetworkError(\"request failed\");\n        const FTCHARToUTF8 Text(*Response->GetContentAsString());\n        return core::rt::HttpAnswer{{Response->GetResponseCode(), std::string(Text.Get(), Text.Length())}};\n    }}\n}};\n\nclass F{module}Client\n{{\npublic:\n    FHttpModuleTransport Transport;\n    TUniquePtr<core::Client> Client;\n}};\n\nvoid U{module}Subsystem::Configure(const FString& BaseUrl)\n{{\n    Client = MakeShared<F{module}Client>();\n    core::rt::Options Options;\n    Options.base_url = TCHAR_TO_UTF8(*BaseUrl);\n    Options.state_dir = TCHAR_TO_UTF8(*FPaths::ProjectSavedDir());\n    Client->Client = MakeUnique<core::Client>(core::make_client(Options, Client->Transport));\n}}\n\nbool U{module}Subsystem::Enqueue(const FString& EventJson, TArray<F{module}Violation>& Violations)\n{{\n    if (!Client.IsValid()) return false;\n    try\n    {{\n        Client->Client->enqueue(core::decode(TCHAR_TO_UTF8(*EventJson)));\n        return true;\n    }}\n    catch (const core::rt::ContractViolation& Error)\n    {{\n        for (const auto& v : Error.violations)\n        {{\n            Violations.Add({{UTF8_TO_TCHAR(v.code.c_str()), UTF8_TO_TCHAR(v.path.c_str()), UTF8_TO_TCHAR(core::rt::policy_name(v.policy)), UTF8_TO_TCHAR(v.message.c_str())}});\n        }}\n        return false;\n    }}\n    catch (const core::rt::DecodeError& Error)\n    {{\n        Violations.Add({{TEXT(\"decode\"), TEXT(\"$\"), TEXT(\"reject\"), UTF8_TO_TCHAR(Error.what())}});\n        return false;\n    }}\n}}\n\nint32 U{module}Subsystem::Flush()\n{{\n    if (!Client.IsValid()) return 0;\n    try\n    {{\n        return static_cast<int32>(Client->Client->flush().sent);\n    }}\n    catch (const std::exception&)\n    {{\n        return -1;\n    }}\n}}\n\nvoid U{module}Subsystem::Deinitialize()\n{{\n    Flush();\n    Super::Deinitialize();\n}}\n",
        core = c.name,
    );
    vec![
        GeneratedFile::new(format!("{base}/{module}.Build.cs"), build_cs),
        GeneratedFile::new(format!("{base}/Public/{module}Subsystem.h"), subsystem_h),
        GeneratedFile::new(
            format!("{base}/Private/{module}Subsystem.cpp"),
            subsystem_cpp,
        ),
    ]
}

/// A member's doc text: its description, then its name, id and type.
fn member_doc(field: &Field) -> String {
    let mut doc = String::new();
    if let Some(d) = &field.description {
        doc.push_str(&d.replace('\n', " "));
        doc.push(' ');
    }
    let _ = write!(
        doc,
        "(`{}`, id {}, {})",
        field.name,
        field.id,
        field.ty.name()
    );
    doc
}

#[cfg(test)]
mod tests {
    /// The runtime splits batches into requests the deployed API takes (Kinesis `PutRecords`).
    #[test]
    fn batch_requests_fit_the_deployed_api() {
        let line = format!(
            "constexpr std::size_t max_events_per_batch_request = {};",
            super::super::apigateway::PUT_RECORDS_MAX
        );
        assert!(super::RUNTIME.contains(&line), "{line}");
    }
}
