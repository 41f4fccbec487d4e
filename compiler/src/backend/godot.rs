//! The Godot client (GDScript, Godot 4.2+): per contract, an addon folder with the shared runtime
//! (`contractc_runtime.gd`: the server's violation vocabulary, an exact JSON reader, timestamp
//! formats, identity or the game's own sign-in, retry, persistent queue, batching, over
//! `HTTPRequest`) and one module rendered from the client plan: typed constructors per event
//! shape (`make_login_event(event_id: String, ...)`), `validate` with the server's codes, paths,
//! policies and messages, `encode` and `decode`.
//!
//! Events are Dictionaries (GDScript has no record types a game would want to declare per
//! variant), so `validate` also checks what typed languages get from their types: JSON kinds,
//! missing fields, unknown keys (for contracts that refuse them) and the variant.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::GeneratedFile;
use super::client_checks::{CheckWriter, Loop, Spelling};
use super::client_plan::{ClientPlan, Element, Kind, Member, Record, Value};
use crate::ir::{ContractSet, FormatItem, Valid};

/// The runtime every addon carries.
const RUNTIME: &str = include_str!("../../templates/godot/contractc_runtime.gd");

/// Names a parameter cannot take (`param`): GDScript's reserved words and constants, the
/// built-in types written in lowercase, `get` and `set` (gdtoolkit's parser takes them for
/// property accessors), and what a constructor's body uses (`event`, `optional`, `rt`).
const KEYWORDS: &[&str] = &[
    "and",
    "as",
    "assert",
    "await",
    "break",
    "breakpoint",
    "class",
    "class_name",
    "const",
    "continue",
    "elif",
    "else",
    "enum",
    "extends",
    "false",
    "for",
    "func",
    "get",
    "if",
    "in",
    "is",
    "match",
    "namespace",
    "not",
    "null",
    "or",
    "pass",
    "preload",
    "return",
    "self",
    "set",
    "signal",
    "static",
    "super",
    "trait",
    "true",
    "var",
    "void",
    "when",
    "while",
    "yield",
    "PI",
    "TAU",
    "INF",
    "NAN",
    "optional",
    "event",
    "rt",
    "bool",
    "int",
    "float",
];

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    for c in &set.contracts {
        let dir = format!("{0}/clients/godot/addons/contractc_{0}", c.name);
        files.push(GeneratedFile::new(
            format!("{dir}/contractc_runtime.gd"),
            format!("{}{RUNTIME}", super::header("#", &c.source.path)),
        ));
        files.push(GeneratedFile::new(
            format!("{dir}/{}.gd", c.name),
            Module::new(&ClientPlan::of(c)).render(),
        ));
    }
    files
}

/// A GDScript string literal: JSON-like escapes, every control and line-separating character as
/// `\uXXXX`.
fn lit(text: &str) -> String {
    super::c_literal(text, |c| {
        (c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            .then(|| format!("\\u{:04x}", c as u32))
    })
}

/// Text safe in a `##` comment line, without the trailing spaces gdlint refuses (a description
/// may end in a line break, which `comment_line` makes a space).
fn doc_text(text: &str) -> String {
    super::comment_line(text).trim_end().to_string()
}

/// `PlayersItem` → `players_item`, `Position12` → `position12`.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A parameter named after a field, as gdlint wants argument names
/// (`_?[a-z][a-z0-9]*(_[a-z0-9]+)*`: no edge or doubled `_`), never a word of `KEYWORDS` nor
/// one of the constructor's other parameters (`taken`).
fn param(name: &str, taken: &mut BTreeSet<String>) -> String {
    let mut base = name
        .split('_')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if !base.starts_with(|c: char| c.is_ascii_lowercase()) {
        base.insert_str(0, "v_");
    }
    if KEYWORDS.contains(&base.as_str()) {
        base.push_str("_value");
    }
    let mut param = base.clone();
    let mut n = 2;
    while !taken.insert(param.clone()) {
        param = format!("{base}{n}");
        n += 1;
    }
    param
}

/// The Variant type a value's JSON kind is held as.
fn variant_type(kind: &Kind) -> &'static str {
    match kind {
        Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => "TYPE_STRING",
        Kind::Boolean => "TYPE_BOOL",
        Kind::Int | Kind::Long | Kind::Timestamp { .. } | Kind::TimestampTz => "TYPE_INT",
        Kind::Float | Kind::Double => "TYPE_FLOAT",
        Kind::List(_) => "TYPE_ARRAY",
        Kind::Map { .. } | Kind::Record(_) => "TYPE_DICTIONARY",
    }
}

/// The static type of a constructor parameter.
fn param_type(kind: &Kind) -> &'static str {
    match kind {
        Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => "String",
        Kind::Boolean => "bool",
        Kind::Int | Kind::Long | Kind::Timestamp { .. } | Kind::TimestampTz => "int",
        Kind::Float | Kind::Double => "float",
        Kind::List(_) => "Array",
        Kind::Map { .. } | Kind::Record(_) => "Dictionary",
    }
}

/// The module of one contract, rendered from its plan.
struct Module<'p, 'c> {
    plan: &'p ClientPlan<'c>,
    counter: usize,
}

impl<'p, 'c> Module<'p, 'c> {
    fn new(plan: &'p ClientPlan<'c>) -> Self {
        Module { plan, counter: 0 }
    }

    fn record_fn(&self, index: usize) -> String {
        snake(&self.plan.records[index].name)
    }

    /// The constant listing a record's keys, when the contract refuses unknown ones.
    fn fields_const(&self, record: &Record) -> Option<String> {
        self.plan
            .allowed_keys(record)
            .map(|_| format!("FIELDS_{}", snake(&record.name).to_ascii_uppercase()))
    }

    // ----- decoding and encoding ---------------------------------------------------------------

    /// A Callable reading a JSON value as `kind` with the decoder `d`.
    fn reader(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date => "d.string".into(),
            Kind::Decimal { .. } => "d.decimal".into(),
            Kind::Boolean => "d.boolean".into(),
            Kind::Int => "d.integer".into(),
            Kind::Long => "d.long".into(),
            Kind::Float | Kind::Double => "d.number".into(),
            Kind::Timestamp { format } => format!("d.timestamp.bind(FORMAT_{format})"),
            Kind::TimestampTz => "d.timestamptz".into(),
            Kind::List(e) => format!("d.list.bind({})", self.element_reader(e)),
            Kind::Map { value, .. } => format!("d.map.bind({})", self.element_reader(value)),
            Kind::Record(index) => format!("decode_{}.bind(d)", self.record_fn(*index)),
        }
    }

    fn element_reader(&self, e: &Element) -> String {
        let inner = self.reader(&e.value.kind);
        if e.required {
            inner
        } else {
            format!("d.nullable.bind({inner})")
        }
    }

    /// A Callable writing a present value of `kind` as JSON.
    fn writer(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => {
                "rt.write_string".into()
            }
            Kind::Boolean => "rt.write_boolean".into(),
            Kind::Int | Kind::Long => "rt.write_long".into(),
            Kind::Float | Kind::Double => "rt.write_number".into(),
            Kind::Timestamp { format } => format!("rt.write_timestamp.bind(FORMAT_{format})"),
            Kind::TimestampTz => "rt.write_timestamptz".into(),
            Kind::List(e) => format!("rt.write_list.bind({})", self.writer(&e.value.kind)),
            Kind::Map { value, .. } => {
                format!("rt.write_map.bind({})", self.writer(&value.value.kind))
            }
            Kind::Record(index) => format!("encode_{}", self.record_fn(*index)),
        }
    }

    /// A call writing the present value `expr` of `kind` as JSON (nested items by Callables).
    fn write(&self, kind: &Kind, expr: &str) -> String {
        match kind {
            Kind::Timestamp { format } => format!("rt.write_timestamp({expr}, FORMAT_{format})"),
            Kind::List(e) => format!("rt.write_list({expr}, {})", self.writer(&e.value.kind)),
            Kind::Map { value, .. } => {
                format!("rt.write_map({expr}, {})", self.writer(&value.value.kind))
            }
            _ => format!("{}({expr})", self.writer(kind)),
        }
    }

    // ----- records -----------------------------------------------------------------------------

    /// `check_x`: unknown keys (when refused), then every member in order.
    fn checker(&mut self, record: &Record) -> String {
        let now = if record.uses_now { "now" } else { "_now" };
        let mut out = format!(
            "static func check_{}(cx: rt.Checker, value: Dictionary, {now}: int) -> void:\n",
            snake(&record.name)
        );
        if let Some(fields) = self.fields_const(record) {
            let _ = writeln!(out, "\trt.check_keys(cx, value, {fields})");
        }
        for member in record.members.iter().filter(|m| m.constant.is_none()) {
            self.member_checks(member, &mut out);
        }
        out.push_str("\n\n");
        out
    }

    /// A member: `missing` when a required one is absent, then its kind and rules.
    fn member_checks(&mut self, member: &Member, out: &mut String) {
        let name = &member.field.name;
        let v = self.fresh("v");
        let mut body = String::new();
        self.checks(&member.value, &v, Some(name), &mut body, "\t\t");
        let _ = writeln!(out, "\tvar {v}: Variant = value.get({})", lit(name));
        if member.required {
            let _ = write!(
                out,
                "\tif {v} == null:\n\t\tcx.report(\"missing\", {}, \"reject\", {})\n",
                lit(name),
                lit(&member.missing)
            );
            if !body.is_empty() {
                let _ = write!(out, "\telse:\n{body}");
            }
        } else if !body.is_empty() {
            let _ = write!(out, "\tif {v} != null:\n{body}");
        }
    }

    /// `encode_x`: each present member's JSON, in the contract's order.
    fn encoder(&self, record: &Record) -> String {
        let mut out = format!(
            "static func encode_{}(value: Dictionary) -> String:\n\tvar parts := PackedStringArray()\n",
            snake(&record.name)
        );
        for member in &record.members {
            let name = &member.field.name;
            let key = lit(&format!("{}:", lit(name)));
            let _ = write!(
                out,
                "\tif value.get({0}) != null:\n\t\tparts.append({key} + {1})\n",
                lit(name),
                self.write(&member.value.kind, &format!("value[{}]", lit(name)))
            );
        }
        out.push_str("\treturn rt.write_object(parts)\n\n\n");
        out
    }

    /// `decode_x`: the members the decoder `d` reads from `value` (the first error kept).
    fn decoder(&self, record: &Record) -> String {
        let allowed = self.fields_const(record).unwrap_or_else(|| "null".into());
        let mut out = format!(
            "static func decode_{}(value: Variant, d: rt.Decoder) -> Dictionary:\n\tvar o := d.object(value, {allowed})\n\tvar record := {{}}\n",
            snake(&record.name)
        );
        for member in &record.members {
            let name = lit(&member.field.name);
            if let Some(constant) = member.constant {
                let _ = writeln!(out, "\trecord[{name}] = {}", lit(constant));
                continue;
            }
            let read = format!(
                "d.required(o.get({name}), {})",
                self.reader(&member.value.kind)
            );
            if member.required {
                let _ = writeln!(out, "\trecord[{name}] = {read}");
            } else {
                let _ = write!(
                    out,
                    "\tif o.get({name}) != null:\n\t\trecord[{name}] = {read}\n"
                );
            }
        }
        out.push_str("\treturn record\n\n\n");
        out
    }

    /// `make_x`: every required member a typed parameter, the others in `optional`; the
    /// discriminator set and the deduplication id made.
    fn constructor(&self, record: &Record) -> String {
        let mut taken = BTreeSet::new();
        let mut params = Vec::new();
        let mut entries = Vec::new();
        for member in &record.members {
            let name = &member.field.name;
            match member.constant {
                Some(value) => entries.push(format!("{}: {}", lit(name), lit(value))),
                None if member.required && !member.made_with_event => {
                    let param = param(name, &mut taken);
                    params.push(format!("{param}: {}", param_type(&member.value.kind)));
                    entries.push(format!("{}: {param}", lit(name)));
                }
                None => {}
            }
        }
        params.push("optional := {}".into());
        let what = match record.variant {
            Some(v) => format!("A `{}` event", doc_text(&v.value)),
            None => format!("A `{}` event", self.plan.contract.name),
        };
        let mut out = format!(
            "## {what}: each required field is a parameter, `optional` holds any others.\nstatic func make_{}({}) -> Dictionary:\n\tvar event := {{{}}}\n\tevent.merge(optional)\n",
            snake(&record.name),
            params.join(", "),
            entries.join(", ")
        );
        for member in record.members.iter().filter(|m| m.made_with_event) {
            let name = lit(&member.field.name);
            let _ = write!(
                out,
                "\tif event.get({name}) == null:\n\t\tevent[{name}] = rt.uuidv7()\n"
            );
        }
        out.push_str("\treturn event\n\n\n");
        out
    }

    // ----- the module --------------------------------------------------------------------------

    fn render(mut self) -> String {
        let plan = self.plan;
        let mut out = self.preamble();
        out.push_str(&self.statics());
        for record in plan.records.iter().chain(&plan.events) {
            if record.is_event {
                out.push_str(&self.constructor(record));
            }
            let code = self.checker(record);
            out.push_str(&code);
            out.push_str(&self.encoder(record));
            out.push_str(&self.decoder(record));
        }
        out.push_str(&self.validate());
        out.push_str(&self.encode());
        out.push_str(&self.decode());
        out.push_str(
            "## A client for this contract (add it to the scene tree):\n## `create_client({\"base_url\": \"https://host/prod/\"})`.\nstatic func create_client(options: Dictionary) -> rt.ContractClient:\n\treturn rt.ContractClient.new(CONTRACT, validate, encode, options)\n",
        );
        out
    }

    fn preamble(&self) -> String {
        let c = self.plan.contract;
        let ingest = &c.ingest;
        let mut out = super::header("#", &c.source.path);
        let _ = writeln!(
            out,
            "## Contract `{}` {}, owned by {}: typed events, local validation and the sender.",
            c.name,
            c.version,
            doc_text(&c.owner)
        );
        if let Some(d) = &c.description {
            let _ = writeln!(out, "##\n## {}", doc_text(d));
        }
        let _ = writeln!(
            out,
            "extends RefCounted\n\nconst rt = preload(\"contractc_runtime.gd\")\n\n## The contract's name.\nconst NAME := {}\n## The contract version this module was generated from (sent as `X-Contract-Version`).\nconst VERSION := {}\n## SHA-256 of the contract file.\nconst FINGERPRINT := {}",
            lit(&c.name),
            lit(&c.version.to_string()),
            lit(&c.source.fingerprint)
        );
        let _ = writeln!(
            out,
            "## The contract as the client needs it.\nconst CONTRACT := {{\n\t\"name\": NAME,\n\t\"version\": VERSION,\n\t\"route\": {},\n\t\"batch_route\": {},\n\t\"max_body_bytes\": {},\n\t\"max_batch_events\": {},\n}}",
            lit(&ingest.route),
            ingest
                .batch_route
                .as_deref()
                .map_or_else(|| "null".to_string(), lit),
            ingest.max_body_bytes,
            ingest.max_batch_events
        );
        out
    }

    /// Field lists, timestamp formats and patterns.
    fn statics(&self) -> String {
        let mut out = String::new();
        for record in self.plan.records.iter().chain(&self.plan.events) {
            if let (Some(name), Some(keys)) =
                (self.fields_const(record), self.plan.allowed_keys(record))
            {
                let quoted: Vec<String> = keys.iter().map(|k| lit(k)).collect();
                let _ = writeln!(out, "const {name} := [{}]", quoted.join(", "));
            }
        }
        for (index, format) in self.plan.formats.iter().enumerate() {
            let items: Vec<String> = format.items.iter().map(format_item).collect();
            let _ = writeln!(
                out,
                "## The timestamp format `{}`.\nconst FORMAT_{index} := [{}]",
                doc_text(&format.pattern),
                items.join(", ")
            );
        }
        for (index, pattern) in self.plan.patterns.iter().enumerate() {
            let _ = writeln!(
                out,
                "## `{}`, full-match.\nstatic var PATTERN_{index}: RegEx = rt.pattern({})",
                doc_text(pattern),
                lit(pattern)
            );
        }
        out.push_str("\n\n");
        out
    }

    /// `validate`: the checks of the event's shape, chosen by its discriminator.
    fn validate(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "## Every violation the server would report for the event, with the same code, path, policy\n## and message. `now_micros` stands for the server's ingest time.\nstatic func validate(event: Dictionary, now_micros: int = rt.now_micros()) -> Array[Dictionary]:\n\tvar cx := rt.Checker.new()\n",
        );
        let Some(d) = plan.discriminator else {
            out.push_str("\tcheck_event(cx, event, now_micros)\n\treturn cx.violations\n\n\n");
            return out;
        };
        let d = lit(d);
        let _ = writeln!(
            out,
            "\tvar kind: Variant = event.get({d})\n\tif kind == null:\n\t\tcx.report(\"missing\", {d}, \"reject\", \"required field is missing\")\n\telif not kind is String:\n\t\trt.check_type(cx, {d}, kind, TYPE_STRING)"
        );
        for record in &plan.events {
            let _ = writeln!(
                out,
                "\telif kind == {}:\n\t\tcheck_{}(cx, event, now_micros)",
                lit(variant_value(record)),
                snake(&record.name)
            );
        }
        let _ = writeln!(
            out,
            "\telse:\n\t\tcx.report(\"one_of\", {d}, \"reject\", {})\n\treturn cx.violations\n\n",
            lit(plan.unknown_variant.as_deref().unwrap_or_default())
        );
        out
    }

    fn encode(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "## The event as the JSON body the server expects.\nstatic func encode(event: Dictionary) -> String:\n",
        );
        let Some(d) = plan.discriminator else {
            out.push_str("\treturn encode_event(event)\n\n\n");
            return out;
        };
        let _ = writeln!(out, "\tvar kind: Variant = event.get({})", lit(d));
        for record in &plan.events {
            let _ = writeln!(
                out,
                "\tif kind is String and kind == {}:\n\t\treturn encode_{}(event)",
                lit(variant_value(record)),
                snake(&record.name)
            );
        }
        out.push_str("\treturn \"\"\n\n\n");
        out
    }

    fn decode(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "## A JSON body as an event; `error` says why when the contract's types cannot hold it (wrong\n## JSON types, unknown or duplicate keys, missing required fields, unknown variants,\n## unparseable timestamps). Then `validate` judges the rules.\nstatic func decode(text: String) -> rt.Decoded:\n\tvar d := rt.Decoder.new()\n\tvar root: Variant = d.parse(text)\n",
        );
        let Some(disc) = plan.discriminator else {
            out.push_str("\treturn d.finish(decode_event(root, d))\n\n\n");
            return out;
        };
        let _ = writeln!(
            out,
            "\tvar kind: Variant = d.required(d.object(root, null).get({}), d.string)",
            lit(disc)
        );
        for record in &plan.events {
            let _ = writeln!(
                out,
                "\tif d.error == \"\" and kind == {}:\n\t\treturn d.finish(decode_{}(root, d))",
                lit(variant_value(record)),
                snake(&record.name)
            );
        }
        let _ = writeln!(
            out,
            "\tif d.error == \"\":\n\t\td.error = \"unknown {disc} \" + rt.quote(str(kind))\n\treturn d.finish({{}})\n\n"
        );
        out
    }
}

/// The discriminator value of an event shape ("" for the only one).
fn variant_value<'c>(record: &Record<'c>) -> &'c str {
    record.variant.map(|v| v.value.as_str()).unwrap_or_default()
}

/// How this language spells the pieces of a check.
const SPELLING: Spelling = Spelling {
    literal: lit,
    policy: |p| lit(p.as_str()),
    no_field: "null",
    step: "\t",
    enter_key: "cx.enter_key({k})",
    leave: "cx.leave()",
    char_length: "rt.char_length({v})",
    count: "{n}",
    micros: "{n}",
    no_match: "not rt.full_match(PATTERN_{i}, {v})",
    int_bound: "{v} {op} {n}",
    float_bound_on_int: "float({v}) {op} {x}",
    float_bound: "{v} {op} {x}",
    decimal_bound: "rt.compare_decimal({v}, \"{unscaled}\") {op} 0",
    not_in: "not {v} in [{values}]",
    string_type: "",
    int_type: "",
    string_member: "{s}",
    int_member: "{n}",
    report: "{indent}if {failed}:\n{indent}\tcx.report({code}, {field}, {policy}, {message})\n",
};

impl CheckWriter for Module<'_, '_> {
    fn spelling(&self) -> &'static Spelling {
        &SPELLING
    }

    fn counter(&mut self) -> &mut usize {
        &mut self.counter
    }

    /// A Dictionary's values are any Variant: each check starts with the value's JSON kind.
    fn checks(
        &mut self,
        value: &Value,
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let f = self.field_arg(field);
        let inner = format!("{indent}\t");
        let kind_check = format!(
            "rt.check_type(cx, {f}, {expr}, {})",
            variant_type(&value.kind)
        );
        match &value.kind {
            Kind::String => self.typed(value, &kind_check, expr, &f, out, indent),
            Kind::Boolean => {
                let _ = writeln!(out, "{indent}{kind_check}");
            }
            Kind::Uuid => {
                let _ = writeln!(
                    out,
                    "{indent}if {kind_check}:\n{inner}rt.check_uuid(cx, {f}, {expr})"
                );
            }
            Kind::Int | Kind::Long => {
                let (min, max, name) = match value.kind {
                    Kind::Int => ("rt.INT_MIN", "rt.INT_MAX", "an int"),
                    _ => ("rt.LONG_MIN", "rt.LONG_MAX", "a long"),
                };
                let call = format!("rt.check_integer(cx, {f}, {expr}, {min}, {max}, \"{name}\")");
                self.guarded(value, "n", &call, "", &f, out, indent);
            }
            Kind::Float | Kind::Double => {
                let is_float = matches!(value.kind, Kind::Float);
                let call = format!("rt.check_number(cx, {f}, {expr}, {is_float})");
                self.guarded(value, "x", &call, "", &f, out, indent);
            }
            Kind::Decimal { precision, scale } => {
                let call = format!("rt.check_decimal(cx, {f}, {expr}, {precision}, {scale})");
                let _ = writeln!(out, "{indent}if {kind_check}:");
                self.guarded(value, "d", &call, "", &f, out, &inner);
            }
            Kind::Date => {
                let call = format!("rt.check_date(cx, {f}, {expr})");
                let _ = writeln!(out, "{indent}if {kind_check}:");
                self.guarded(value, "day", &call, " * 86400000000", &f, out, &inner);
            }
            Kind::Timestamp { .. } | Kind::TimestampTz => {
                let call = format!("rt.date_micros(cx, {f}, {expr})");
                self.guarded(value, "t", &call, "", &f, out, indent);
            }
            Kind::List(e) => {
                let mut body = String::new();
                self.list_checks(value, e, expr, field, &mut body, indent);
                within(&kind_check, &body, out, indent);
            }
            Kind::Map { key, value: item } => {
                let mut body = String::new();
                self.map_checks(value, key, item, expr, field, &mut body, indent);
                within(&kind_check, &body, out, indent);
            }
            Kind::Record(index) => {
                let call = format!("{inner}check_{}(cx, {expr}, now)\n", self.record_fn(*index));
                let _ = writeln!(out, "{indent}if {kind_check}:");
                self.entered(field, &call, out, &inner);
            }
        }
    }

    /// Items and values: a required one is checked as it is (null is the wrong kind), an
    /// optional one when present.
    fn element_checks(&mut self, e: &Element, expr: &str, out: &mut String, indent: &str) {
        if e.required {
            self.checks(&e.value, expr, None, out, indent);
            return;
        }
        let mut body = String::new();
        self.checks(&e.value, expr, None, &mut body, &format!("{indent}\t"));
        if !body.is_empty() {
            let _ = write!(out, "{indent}if {expr} != null:\n{body}");
        }
    }

    fn list_loop(&mut self, expr: &str, indent: &str) -> Loop {
        let items = self.fresh("items");
        let i = self.fresh("i");
        let inner = format!("{indent}\t");
        Loop {
            setup: format!("{inner}var {items}: Array = {expr}\n"),
            head: format!("{inner}for {i} in {items}.size():\n{inner}\tcx.enter_index({i})\n"),
            key: String::new(),
            item: format!("{items}[{i}]"),
            tail: format!("{inner}\tcx.leave()\n"),
            count: format!("{items}.size()"),
            body_indent: format!("{inner}\t"),
        }
    }

    fn map_loop(&mut self, expr: &str, indent: &str) -> Loop {
        let map = self.fresh("map");
        let k = self.fresh("key");
        let inner = format!("{indent}\t");
        Loop {
            setup: format!("{inner}var {map}: Dictionary = {expr}\n"),
            head: format!("{inner}for {k} in {map}:\n{inner}\tcx.enter_key({k})\n"),
            key: k.clone(),
            item: format!("{map}[{k}]"),
            tail: format!("{inner}\tcx.leave()\n"),
            count: format!("{map}.size()"),
            body_indent: format!("{inner}\t"),
        }
    }

    /// A collection's block is its kind check's (see `within`): nothing to open or close.
    fn block(&self, _indent: &str) -> (String, String) {
        (String::new(), String::new())
    }
}

impl Module<'_, '_> {
    /// `if <kind check>:` then the rules on `expr` (just the kind check without rules).
    fn typed(
        &self,
        value: &Value,
        kind_check: &str,
        expr: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        if value.rules.is_empty() {
            let _ = writeln!(out, "{indent}{kind_check}");
        } else {
            let _ = writeln!(out, "{indent}if {kind_check}:");
            self.value_rules(value, expr, f, out, &format!("{indent}\t"));
        }
    }

    /// `call` (a check giving the value or null) and, when it passed, the rules on
    /// `value + suffix`.
    #[allow(clippy::too_many_arguments)]
    fn guarded(
        &mut self,
        value: &Value,
        base: &str,
        call: &str,
        suffix: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        if value.rules.is_empty() {
            let _ = writeln!(out, "{indent}{call}");
            return;
        }
        let var = self.fresh(base);
        let _ = writeln!(
            out,
            "{indent}var {var}: Variant = {call}\n{indent}if {var} != null:"
        );
        let compared = if suffix.is_empty() {
            var.clone()
        } else {
            format!("({var}{suffix})")
        };
        self.value_rules(value, &compared, f, out, &format!("{indent}\t"));
    }
}

/// `body` under `if <kind check>:`, or the kind check alone when the body checks nothing.
fn within(kind_check: &str, body: &str, out: &mut String, indent: &str) {
    if body.is_empty() {
        let _ = writeln!(out, "{indent}{kind_check}");
    } else {
        let _ = write!(out, "{indent}if {kind_check}:\n{body}");
    }
}

fn format_item(item: &FormatItem) -> String {
    match item {
        FormatItem::Literal(text) => format!("{{\"literal\": {}}}", lit(text)),
        FormatItem::Year => "\"%Y\"".into(),
        FormatItem::Month => "\"%m\"".into(),
        FormatItem::Day => "\"%d\"".into(),
        FormatItem::Hour => "\"%H\"".into(),
        FormatItem::Minute => "\"%M\"".into(),
        FormatItem::Second => "\"%S\"".into(),
        FormatItem::Fraction => "\"%.f\"".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::test_text::{HOSTILE, c_like_value};

    #[test]
    fn literals_read_back_as_the_text() {
        let literal = super::lit(HOSTILE);
        assert_eq!(c_like_value(&literal), HOSTILE);
        assert!(!literal.contains(|c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}'));
    }

    #[test]
    fn doc_text_is_one_line_without_trailing_spaces() {
        let doc = super::doc_text(&format!("{HOSTILE}\n"));
        assert!(!doc.contains(|c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}'));
        assert_eq!(doc, doc.trim_end());
    }

    /// gdlint's argument names, never a reserved word, never twice in one constructor.
    #[test]
    fn parameters_are_lint_clean_and_distinct() {
        let mut taken = BTreeSet::new();
        let names: Vec<String> = [
            "get",
            "a__b",
            "a_b",
            "trailing_",
            "_lead",
            "_1",
            "class",
            "event",
            "score",
        ]
        .iter()
        .map(|name| super::param(name, &mut taken))
        .collect();
        assert_eq!(
            names,
            [
                "get_value",
                "a_b",
                "a_b2",
                "trailing",
                "lead",
                "v_1",
                "class_value",
                "event_value",
                "score"
            ]
        );
        let lint = regex::Regex::new("^_?[a-z][a-z0-9]*(_[a-z0-9]+)*$").unwrap();
        assert!(names.iter().all(|n| lint.is_match(n)), "{names:?}");
    }
}
