//! The Unreal client: an engine-free C++17 core per contract (a struct per variant with required
//! fields as constructor parameters, `validate` with the server's codes, paths, policies and
//! messages, JSON writing, `decode`, and the header-only runtime: identity, retry, persistent
//! queue, batching, sender over a transport interface, plus a libcurl transport), and a thin
//! Unreal module over it (`FHttpModule` transport, a Blueprint-callable subsystem sending JSON
//! built by the core). The core is compiled and tested with g++; the module needs the engine.

use std::fmt::Write as _;

use super::GeneratedFile;
use super::client_checks::{CheckWriter, Loop, Spelling};
use super::client_plan::{ClientPlan, Element, Kind, Member, Record, Value, pascal};
use crate::ir::{Contract, ContractSet, FormatItem, Policy, Valid};

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
            Module::new(&ClientPlan::of(c), &namespace).render(),
        ));
        files.extend(unreal_module(c, &namespace, &dir));
    }
    files
}

/// A C++ string literal.
fn lit(text: &str) -> String {
    super::c_literal(text, |c| match c {
        '?' => Some("\\?".into()),
        // A hex escape runs on over hex digits: the literal ends and a new one starts after it.
        c if (c as u32) < 0x20 => Some(format!("\\x{:02x}\"\"", c as u32)),
        // g++ -Wbidi-chars refuses them raw, not as universal character names.
        c if super::BIDI_CONTROLS.contains(&c) => Some(format!("\\u{:04x}", c as u32)),
        _ => None,
    })
}

/// Text safe in a `//` or `///` comment: one line (`comment_line`: g++ also ends a line at a
/// CR), and no backslash (or its trigraph `??/`) at its end, which would splice the next line
/// into the comment.
fn doc_text(text: &str) -> String {
    let mut line = super::comment_line(text);
    let end = line.trim_end_matches(' ').len();
    if line[..end].ends_with('\\') || line[..end].ends_with("??/") {
        line.truncate(end);
        line.push('.');
    }
    line
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
fn member_name(name: &str) -> String {
    if KEYWORDS.contains(&name) {
        format!("{name}_")
    } else {
        name.to_string()
    }
}

fn policy(policy: Policy) -> &'static str {
    match policy {
        Policy::Reject => "rt::Policy::Reject",
        Policy::Quarantine => "rt::Policy::Quarantine",
        Policy::Warn => "rt::Policy::Warn",
    }
}

/// The core header of one contract, rendered from its plan.
struct Module<'p, 'c> {
    plan: &'p ClientPlan<'c>,
    namespace: String,
    counter: usize,
}

impl<'p, 'c> Module<'p, 'c> {
    fn new(plan: &'p ClientPlan<'c>, namespace: &str) -> Self {
        Module {
            plan,
            namespace: namespace.to_string(),
            counter: 0,
        }
    }

    fn cpp_type(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => "std::string".into(),
            Kind::Boolean => "bool".into(),
            Kind::Int => "std::int32_t".into(),
            Kind::Long => "std::int64_t".into(),
            Kind::Float => "float".into(),
            Kind::Double => "double".into(),
            Kind::Timestamp { .. } => "rt::Timestamp".into(),
            Kind::TimestampTz => "rt::TimestampTz".into(),
            Kind::List(e) => format!("std::vector<{}>", self.element_type(e)),
            Kind::Map { value, .. } => {
                format!("std::map<std::string, {}>", self.element_type(value))
            }
            Kind::Record(index) => self.plan.records[*index].name.clone(),
        }
    }

    fn element_type(&self, e: &Element) -> String {
        let inner = self.cpp_type(&e.value.kind);
        if e.required {
            inner
        } else {
            format!("std::optional<{inner}>")
        }
    }

    /// An expression reading the `rt::Json` expression `j` (present) as `kind`.
    fn reader(&mut self, kind: &Kind, j: &str) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date => format!("rt::read::string({j})"),
            Kind::Decimal { .. } => format!("rt::read::decimal({j})"),
            Kind::Boolean => format!("rt::read::boolean({j})"),
            Kind::Int => format!("rt::read::int_({j})"),
            Kind::Long => format!("rt::read::long_({j})"),
            Kind::Float => format!("rt::read::float_({j})"),
            Kind::Double => format!("rt::read::double_({j})"),
            Kind::Timestamp { format } => format!("rt::read::timestamp({j}, format_{format}())"),
            Kind::TimestampTz => format!("rt::read::timestamptz({j})"),
            Kind::List(e) => self.collection_reader("list", e, j),
            Kind::Map { value, .. } => self.collection_reader("map", value, j),
            Kind::Record(index) => format!("decode_{}({j})", self.plan.records[*index].name),
        }
    }

    /// `rt::read::list` or `rt::read::map` with a lambda reading each item.
    fn collection_reader(&mut self, how: &str, e: &Element, j: &str) -> String {
        let t = self.element_type(e);
        let v = self.fresh("j");
        let inner = self.reader(&e.value.kind, &v);
        let item = if e.required {
            inner
        } else {
            format!("{v}.kind == rt::Json::Kind::Null ? {t}() : {t}({inner})")
        };
        format!("rt::read::{how}<{t}>({j}, [](const rt::Json& {v}) -> {t} {{ return {item}; }})")
    }

    /// An expression writing `x` (present) as JSON.
    fn writer(&mut self, kind: &Kind, x: &str) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => {
                format!("rt::quote({x})")
            }
            Kind::Boolean => format!("rt::boolean({x})"),
            Kind::Int | Kind::Long => format!("rt::number(static_cast<std::int64_t>({x}))"),
            Kind::Float => format!("rt::number(static_cast<float>({x}))"),
            Kind::Double => format!("rt::number(static_cast<double>({x}))"),
            Kind::Timestamp { format } => {
                format!("rt::quote(rt::format_timestamp({x}, format_{format}()))")
            }
            Kind::TimestampTz => format!("rt::quote(rt::format_rfc3339({x}))"),
            Kind::List(e) => self.collection_writer("list", e, x),
            Kind::Map { value, .. } => self.collection_writer("map", value, x),
            Kind::Record(_) => format!("to_json({x})"),
        }
    }

    /// `rt::write::list` or `rt::write::map` with a lambda writing each item.
    fn collection_writer(&mut self, how: &str, e: &Element, x: &str) -> String {
        let t = self.element_type(e);
        let v = self.fresh("w");
        let item = if e.required {
            self.writer(&e.value.kind, &v)
        } else {
            let inner = self.writer(&e.value.kind, &format!("(*{v})"));
            format!("{v} ? {inner} : std::string(\"null\")")
        };
        format!("rt::write::{how}({x}, [](const {t}& {v}) {{ return {item}; }})")
    }

    /// `if (auto v = call) { rules on (*v + suffix) }`: a type check giving the value or none.
    #[allow(clippy::too_many_arguments)]
    fn bound_checks(
        &mut self,
        value: &Value,
        base: &str,
        call: &str,
        suffix: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        let var = self.fresh(base);
        let inner = format!("{indent}    ");
        let _ = writeln!(out, "{indent}if (auto {var} = {call}) {{");
        if value.rules.is_empty() {
            let _ = writeln!(out, "{inner}(void){var};");
        }
        self.value_rules(value, &format!("(*{var}{suffix})"), f, out, &inner);
        let _ = writeln!(out, "{indent}}}");
    }

    // ----- records -----------------------------------------------------------------------------

    /// A struct (or event struct) with its constructor, `to_json`, `check` and decoder.
    fn record(&mut self, record: &Record) -> String {
        let mut out = self.declaration(record);
        out.push_str(&self.json_writer(record));
        out.push_str(&self.checker(record));
        out.push_str(&self.decoder(record));
        out
    }

    /// The struct: members (a variant's discriminator as a constant) and a constructor taking
    /// the required ones.
    fn declaration(&self, record: &Record) -> String {
        let name = &record.name;
        let mut out = match (record.variant, self.plan.discriminator) {
            (Some(v), Some(d)) => format!("/// `{d}: {}`\n", doc_text(&v.value)),
            _ if record.is_event => format!("/// One `{}` event.\n", self.plan.contract.name),
            _ => String::new(),
        };
        let _ = writeln!(out, "struct {name} {{");
        let mut params = Vec::new();
        let mut inits = Vec::new();
        for member in &record.members {
            let field = member.field;
            if let Some(value) = member.constant {
                let _ = writeln!(
                    out,
                    "    /// The discriminator `{}` of this variant.\n    static constexpr const char* {} = {};",
                    field.name,
                    member_name(&field.name),
                    lit(value)
                );
                continue;
            }
            let base = self.cpp_type(&member.value.kind);
            let ty = if member.required {
                base.clone()
            } else {
                format!("std::optional<{base}>")
            };
            let initial = if member.made_with_event {
                " = rt::uuid_v7()"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "    /// {}\n    {ty} {}{initial};",
                member_doc(member),
                member_name(&field.name)
            );
            if member.required {
                params.push(format!("{base} {}_", field.name));
                inits.push(format!(
                    "{}(std::move({}_))",
                    member_name(&field.name),
                    field.name
                ));
            }
        }
        if params.is_empty() {
            let _ = writeln!(out, "\n    {name}() = default;");
        } else {
            let explicit = if params.len() == 1 { "explicit " } else { "" };
            let _ = writeln!(
                out,
                "\n    /// Every required field is a parameter.\n    {explicit}{name}({})\n        : {} {{}}",
                params.join(", "),
                inits.join(", ")
            );
        }
        out.push_str("};\n\n");
        out
    }

    fn json_writer(&mut self, record: &Record) -> String {
        let name = &record.name;
        let mut out = format!(
            "/// The JSON the server expects.\ninline std::string to_json(const {name}& value) {{\n    std::vector<std::string> parts;\n"
        );
        for member in &record.members {
            let key = lit(&format!("\"{}\":", member.field.name));
            let m = member_name(&member.field.name);
            if member.constant.is_some() {
                let _ = writeln!(
                    out,
                    "    parts.push_back(std::string({key}) + rt::quote({name}::{m}));"
                );
            } else if member.required {
                let w = self.writer(&member.value.kind, &format!("value.{m}"));
                let _ = writeln!(out, "    parts.push_back(std::string({key}) + {w});");
            } else {
                let w = self.writer(&member.value.kind, &format!("(*value.{m})"));
                let _ = writeln!(
                    out,
                    "    if (value.{m}) parts.push_back(std::string({key}) + {w});"
                );
            }
        }
        out.push_str("    std::string out = \"{\";\n    for (std::size_t i = 0; i < parts.size(); ++i) out += (i > 0 ? \",\" : \"\") + parts[i];\n    return out + \"}\";\n}\n\n");
        out
    }

    fn checker(&mut self, record: &Record) -> String {
        let mut out = format!(
            "inline void check([[maybe_unused]] rt::Checker& cx, [[maybe_unused]] const {}& value, [[maybe_unused]] std::int64_t now) {{\n",
            record.name
        );
        for member in record.members.iter().filter(|m| m.constant.is_none()) {
            let m = member_name(&member.field.name);
            let x = if member.required {
                format!("value.{m}")
            } else {
                format!("(*value.{m})")
            };
            let mut checks = String::new();
            self.checks(
                &member.value,
                &x,
                Some(&member.field.name),
                &mut checks,
                "        ",
            );
            if checks.is_empty() {
                continue;
            }
            let open = if member.required {
                "{".to_string()
            } else {
                format!("if (value.{m}) {{")
            };
            let _ = write!(out, "    {open}\n{checks}    }}\n");
        }
        out.push_str("}\n\n");
        out
    }

    fn decoder(&mut self, record: &Record) -> String {
        let name = &record.name;
        let allowed = match self.plan.allowed_keys(record) {
            Some(names) => {
                let quoted: Vec<String> = names.iter().map(|n| lit(n)).collect();
                format!("{{{}}}", quoted.join(", "))
            }
            None => "{}".to_string(),
        };
        let mut out = format!(
            "inline {name} decode_{name}(const rt::Json& value) {{\n    const rt::Json& o = rt::read::object(value, {allowed});\n"
        );
        let mut args = Vec::new();
        let mut optionals = String::new();
        for member in record.members.iter().filter(|m| m.constant.is_none()) {
            let key = lit(&member.field.name);
            if member.required {
                args.push(self.reader(
                    &member.value.kind,
                    &format!("rt::read::required(o.get({key}))"),
                ));
            } else {
                let read = self.reader(&member.value.kind, &format!("*o.get({key})"));
                let _ = writeln!(
                    optionals,
                    "    if (rt::read::present(o.get({key}))) result.{} = {read};",
                    member_name(&member.field.name)
                );
            }
        }
        if args.is_empty() {
            let _ = writeln!(out, "    {name} result;");
        } else {
            let _ = writeln!(out, "    {name} result({});", args.join(", "));
        }
        out.push_str(&optionals);
        if let (Some(d), Some(v)) = (self.plan.discriminator, record.variant) {
            let _ = writeln!(
                out,
                "    if (rt::read::string(rt::read::required(o.get({}))) != {}) throw rt::DecodeError(\"not this variant\");",
                lit(d),
                lit(&v.value)
            );
        }
        out.push_str("    return result;\n}\n\n");
        out
    }

    // ----- the header --------------------------------------------------------------------------

    fn render(mut self) -> String {
        let plan = self.plan;
        let c = plan.contract;
        let mut out = super::header("//", &c.source.path);
        let _ = writeln!(
            out,
            "// Contract `{}` {}, owned by {}: typed events, local validation and JSON (C++17, no engine).\n#pragma once\n\n#include \"contractc_runtime.hpp\"\n\nnamespace {} {{\n",
            c.name,
            c.version,
            doc_text(&c.owner),
            self.namespace
        );
        let _ = writeln!(
            out,
            "inline constexpr const char* NAME = {};\n/// Sent as `X-Contract-Version` with every request.\ninline constexpr const char* VERSION = {};\ninline constexpr const char* FINGERPRINT = {};\n",
            lit(&c.name),
            lit(&c.version.to_string()),
            lit(&c.source.fingerprint)
        );
        out.push_str(&self.statics());
        for record in plan.records.iter().chain(&plan.events) {
            let code = self.record(record);
            out.push_str(&code);
        }
        out.push_str(&self.validate());
        out.push_str(&self.decode());
        out.push_str(&self.contract_info());
        let _ = writeln!(out, "}}  // namespace {}", self.namespace);
        out
    }

    fn statics(&self) -> String {
        let mut out = String::new();
        for (index, pattern) in self.plan.patterns.iter().enumerate() {
            let _ = writeln!(
                out,
                "/// `{}`, full-match (std::regex_match).\ninline const std::regex& pattern_{index}() {{\n    static const std::regex re({}, std::regex::ECMAScript);\n    return re;\n}}\n",
                doc_text(pattern),
                lit(&format!("(?:{pattern})"))
            );
        }
        for (index, format) in self.plan.formats.iter().enumerate() {
            let items: Vec<String> = format.items.iter().map(format_item).collect();
            let _ = writeln!(
                out,
                "/// The timestamp format `{}`.\ninline const std::vector<rt::FormatItem>& format_{index}() {{\n    static const std::vector<rt::FormatItem> items = {{{}}};\n    return items;\n}}\n",
                doc_text(&format.pattern),
                items.join(", ")
            );
        }
        out
    }

    /// `Event` (a variant of the shapes when there are several), `to_json` and `validate`.
    fn validate(&self) -> String {
        const DOC: &str = "/// Every violation the server would report if it received the event at `now_micros` (UTC).\ninline std::vector<rt::Violation> validate(const Event& event, std::int64_t now_micros) {\n    rt::Checker cx;\n";
        if self.plan.discriminator.is_none() {
            return format!(
                "{DOC}    check(cx, event, now_micros);\n    return cx.violations;\n}}\n\n"
            );
        }
        let names: Vec<&str> = self.plan.events.iter().map(|r| r.name.as_str()).collect();
        format!(
            "/// Any `{}` event.\nusing Event = std::variant<{}>;\n\ninline std::string to_json(const Event& event) {{\n    return std::visit([](const auto& e) {{ return to_json(e); }}, event);\n}}\n\n{DOC}    std::visit([&](const auto& e) {{ check(cx, e, now_micros); }}, event);\n    return cx.violations;\n}}\n\n",
            self.plan.contract.name,
            names.join(", ")
        )
    }

    fn decode(&self) -> String {
        let mut out = String::from(
            "/// A JSON body as a typed event; throws rt::DecodeError when the types cannot hold it.\ninline Event decode(const std::string& json) {\n    const rt::Json root = rt::parse_json(json);\n",
        );
        match self.plan.discriminator {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "    const std::string kind = rt::read::string(rt::read::required(rt::read::object(root, {{}}).get({})));",
                    lit(d)
                );
                for record in &self.plan.events {
                    let value = record.variant.map(|v| v.value.as_str()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    if (kind == {}) return decode_{}(root);",
                        lit(value),
                        record.name
                    );
                }
                let _ = writeln!(
                    out,
                    "    throw rt::DecodeError(\"unknown {d} \" + rt::quote(kind));"
                );
            }
            None => out.push_str("    return decode_Event(root);\n"),
        }
        out.push_str("}\n\n");
        out
    }

    fn contract_info(&self) -> String {
        let ingest = &self.plan.contract.ingest;
        format!(
            "/// The contract as the client needs it.\ninline rt::ContractInfo<Event> contract() {{\n    rt::ContractInfo<Event> info;\n    info.name = NAME;\n    info.version = VERSION;\n    info.route = {};\n    info.batch_route = {};\n    info.max_batch_events = {};\n    info.max_body_bytes = {};\n    info.validate = [](const Event& e, std::int64_t now) {{ return validate(e, now); }};\n    info.to_json = [](const Event& e) {{ return to_json(e); }};\n    return info;\n}}\n\n/// A client: `Client client(options, transport); client.send(LoginEvent(...));`\nusing Client = rt::Client<Event>;\n\ninline Client make_client(rt::Options options, rt::Transport& transport) {{\n    return Client(contract(), std::move(options), transport);\n}}\n\n",
            lit(&ingest.route),
            lit(ingest.batch_route.as_deref().unwrap_or("")),
            ingest.max_batch_events,
            ingest.max_body_bytes
        )
    }
}

fn format_item(item: &FormatItem) -> String {
    match item {
        FormatItem::Literal(text) => format!("{{0, {}}}", lit(text)),
        FormatItem::Year => "{'Y', nullptr}".into(),
        FormatItem::Month => "{'m', nullptr}".into(),
        FormatItem::Day => "{'d', nullptr}".into(),
        FormatItem::Hour => "{'H', nullptr}".into(),
        FormatItem::Minute => "{'M', nullptr}".into(),
        FormatItem::Second => "{'S', nullptr}".into(),
        FormatItem::Fraction => "{'f', nullptr}".into(),
    }
}

/// How this language spells the pieces of a check.
const SPELLING: Spelling = Spelling {
    literal: lit,
    policy: |p| policy(p).to_string(),
    no_field: "nullptr",
    step: "    ",
    enter_key: "cx.enter_key({k});",
    leave: "cx.leave();",
    char_length: "rt::char_length({v})",
    count: "{n}u",
    micros: "{n}LL",
    no_match: "!std::regex_match({v}, pattern_{i}())",
    int_bound: "{v} {op} {n}LL",
    float_bound_on_int: "{v} {op} {x}",
    float_bound: "{v} {op} {x}",
    decimal_bound: "{v} {op} {unscaled}.0L",
    not_in: "[&] { const std::vector<{type}> allowed{{values}}; return std::find(allowed.begin(), allowed.end(), {v}) == allowed.end(); }()",
    string_type: "std::string",
    int_type: "long long",
    string_member: "std::string({s})",
    int_member: "{n}LL",
    report: "{indent}if ({failed}) cx.report({code}, {field}, {policy}, {message});\n",
};

impl CheckWriter for Module<'_, '_> {
    fn spelling(&self) -> &'static Spelling {
        &SPELLING
    }

    fn counter(&mut self) -> &mut usize {
        &mut self.counter
    }

    /// Statements checking `x` (present) against its type and rules.
    fn checks(
        &mut self,
        value: &Value,
        x: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let f = self.field_arg(field);
        match &value.kind {
            Kind::Boolean => {}
            Kind::String | Kind::Int | Kind::Long => self.value_rules(value, x, &f, out, indent),
            Kind::Uuid => {
                let _ = writeln!(out, "{indent}rt::check_uuid(cx, {f}, {x});");
            }
            Kind::Float | Kind::Double => {
                let _ = writeln!(
                    out,
                    "{indent}if (rt::check_number(cx, {f}, static_cast<double>({x}))) {{"
                );
                let compared = format!("static_cast<double>({x})");
                self.value_rules(value, &compared, &f, out, &format!("{indent}    "));
                let _ = writeln!(out, "{indent}}}");
            }
            Kind::Decimal { precision, scale } => {
                let call = format!("rt::check_decimal(cx, {f}, {x}, {precision}, {scale})");
                self.bound_checks(value, "d", &call, "", &f, out, indent);
            }
            Kind::Date => {
                let call = format!("rt::check_date(cx, {f}, {x})");
                self.bound_checks(value, "day", &call, " * 86400000000LL", &f, out, indent);
            }
            Kind::Timestamp { .. } | Kind::TimestampTz => {
                self.value_rules(value, &format!("{x}.micros"), &f, out, indent)
            }
            Kind::List(e) => self.list_checks(value, e, x, field, out, indent),
            Kind::Map { key, value: item } => {
                self.map_checks(value, key, item, x, field, out, indent)
            }
            Kind::Record(_) => self.entered(
                field,
                &format!("{indent}check(cx, {x}, now);\n"),
                out,
                indent,
            ),
        }
    }

    /// Checks of a list item or map value `x` (an optional unless required).
    fn element_checks(&mut self, e: &Element, x: &str, out: &mut String, indent: &str) {
        if e.required {
            self.checks(&e.value, x, None, out, indent);
            return;
        }
        let mut body = String::new();
        self.checks(
            &e.value,
            &format!("(*{x})"),
            None,
            &mut body,
            &format!("{indent}    "),
        );
        if !body.is_empty() {
            let _ = write!(out, "{indent}if ({x}) {{\n{body}{indent}}}\n");
        }
    }

    fn list_loop(&mut self, x: &str, indent: &str) -> Loop {
        let i = self.fresh("i");
        let inner = format!("{indent}    ");
        Loop {
            setup: String::new(),
            head: format!(
                "{inner}for (std::size_t {i} = 0; {i} < {x}.size(); ++{i}) {{\n{inner}    cx.enter_index({i});\n"
            ),
            key: String::new(),
            item: format!("{x}[{i}]"),
            tail: format!("{inner}    cx.leave();\n{inner}}}\n"),
            count: format!("{x}.size()"),
            body_indent: format!("{inner}    "),
        }
    }

    fn map_loop(&mut self, x: &str, indent: &str) -> Loop {
        let kv = self.fresh("kv");
        let inner = format!("{indent}    ");
        Loop {
            setup: String::new(),
            head: format!(
                "{inner}for (const auto& {kv} : {x}) {{\n{inner}    cx.enter_key({kv}.first);\n"
            ),
            key: format!("{kv}.first"),
            item: format!("{kv}.second"),
            tail: format!("{inner}    cx.leave();\n{inner}}}\n"),
            count: format!("{x}.size()"),
            body_indent: format!("{inner}    "),
        }
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
fn member_doc(member: &Member) -> String {
    let field = member.field;
    let mut doc = String::new();
    if let Some(d) = &field.description {
        doc.push_str(&doc_text(d));
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
    use super::super::test_text::{HOSTILE, c_like_value};

    #[test]
    fn literals_read_back_as_the_text() {
        let literal = super::lit(HOSTILE);
        assert_eq!(c_like_value(&literal), HOSTILE);
        // No trigraph, and no raw direction control (g++ -Wbidi-chars).
        assert!(!literal.contains("??"), "{literal}");
        assert!(!literal.contains(super::super::BIDI_CONTROLS), "{literal}");
    }

    #[test]
    fn comments_end_on_their_line() {
        let doc = super::doc_text(HOSTILE);
        assert!(!doc.contains(|c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}'));
        // A `//` comment ending in a backslash (or `??/`) would continue on the next line.
        assert_eq!(super::doc_text(HOSTILE).chars().last(), Some('.'));
        assert_eq!(super::doc_text("a\\\n"), "a\\.");
        assert_eq!(super::doc_text("a??/"), "a??/.");
        assert_eq!(super::doc_text("a\\b"), "a\\b");
    }
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
