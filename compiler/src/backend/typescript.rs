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

use std::fmt::Write as _;

use super::GeneratedFile;
use super::client_checks::{CheckWriter, Loop, Spelling};
use super::client_plan::{ClientPlan, Element, Kind, Member, Record, Value};
use crate::ir::{ContractSet, FormatItem, Valid};

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
            Module::new(&ClientPlan::of(c)).render(),
        ));
    }
    files
}

/// A TypeScript string literal (JSON's escaping is valid TypeScript).
fn lit(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A pattern as JavaScript's `u` mode reads it. Rust's syntax, which `check` accepts, lets any
/// ASCII punctuation or a space be escaped, as do the other clients' engines; `u` mode refuses
/// an escape of anything but a syntax character (and `-` in a class), so those lose their
/// backslash: they meant the character itself. (Rust alone reads `\<` and `\>` as word
/// boundaries; the clients read `<` and `>`.)
fn unicode_mode(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut classes = 0usize;
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if needless_escape(e, classes > 0) => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '[' => {
                classes += 1;
                out.push(c);
            }
            ']' => {
                classes = classes.saturating_sub(1);
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Whether `u` mode refuses `\c` where `c` stands for itself.
fn needless_escape(c: char, in_class: bool) -> bool {
    (c.is_ascii_punctuation() || c == ' ')
        && !"^$\\.*+?()[]{}|/".contains(c)
        && !(c == '-' && in_class)
}

/// Text safe inside a `/** */` comment: one line, and no `*/` to close it early.
fn doc_text(text: &str) -> String {
    super::comment_line(text).replace("*/", "*\\/")
}

/// The module of one contract, rendered from its plan.
struct Module<'p, 'c> {
    plan: &'p ClientPlan<'c>,
    /// Numbers the local variables of checks.
    counter: usize,
}

impl<'p, 'c> Module<'p, 'c> {
    fn new(plan: &'p ClientPlan<'c>) -> Self {
        Module { plan, counter: 0 }
    }

    fn record_name(&self, index: usize) -> &'p str {
        &self.plan.records[index].name
    }

    // ----- types, readers, writers ---------------------------------------------------------

    fn ts_type(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => "string".into(),
            Kind::Boolean => "boolean".into(),
            Kind::Int | Kind::Float | Kind::Double => "number".into(),
            Kind::Long => "number | bigint".into(),
            Kind::Timestamp { .. } | Kind::TimestampTz => "Date".into(),
            Kind::List(e) => format!("Array<{}>", self.element_type(e)),
            Kind::Map { value, .. } => format!("Record<string, {}>", self.element_type(value)),
            Kind::Record(index) => self.record_name(*index).to_string(),
        }
    }

    fn element_type(&self, e: &Element) -> String {
        let inner = self.ts_type(&e.value.kind);
        if e.required {
            inner
        } else {
            format!("{inner} | null")
        }
    }

    fn reader(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date => "rt.read.string".into(),
            Kind::Decimal { .. } => "rt.read.decimal".into(),
            Kind::Boolean => "rt.read.boolean".into(),
            Kind::Int => "rt.read.integer".into(),
            Kind::Float | Kind::Double => "rt.read.number".into(),
            Kind::Long => "rt.read.long".into(),
            Kind::Timestamp { format } => format!("rt.read.timestamp(FORMAT_{format})"),
            Kind::TimestampTz => "rt.read.timestamptz".into(),
            Kind::List(e) => format!("rt.read.list({})", self.element_coder(e, "read")),
            Kind::Map { value, .. } => {
                format!("rt.read.map({})", self.element_coder(value, "read"))
            }
            Kind::Record(index) => format!("decode{}", self.record_name(*index)),
        }
    }

    fn writer(&self, kind: &Kind) -> String {
        match kind {
            Kind::String | Kind::Uuid | Kind::Date | Kind::Decimal { .. } => {
                "rt.write.string".into()
            }
            Kind::Boolean => "rt.write.boolean".into(),
            Kind::Int | Kind::Float | Kind::Double => "rt.write.number".into(),
            Kind::Long => "rt.write.long".into(),
            Kind::Timestamp { format } => format!("rt.write.timestamp(FORMAT_{format})"),
            Kind::TimestampTz => "rt.write.timestamptz".into(),
            Kind::List(e) => format!("rt.write.list({})", self.element_coder(e, "write")),
            Kind::Map { value, .. } => {
                format!("rt.write.map({})", self.element_coder(value, "write"))
            }
            Kind::Record(index) => format!("encode{}", self.record_name(*index)),
        }
    }

    /// The reader or writer (`how`) of a list item or map value, nullable unless required.
    fn element_coder(&self, e: &Element, how: &str) -> String {
        let inner = if how == "read" {
            self.reader(&e.value.kind)
        } else {
            self.writer(&e.value.kind)
        };
        if e.required {
            inner
        } else {
            format!("rt.{how}.nullable({inner})")
        }
    }

    // ----- checks ----------------------------------------------------------------------------

    /// `call` (a type check returning the value or null) and, when it passed, the rules on
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
            let _ = writeln!(out, "{indent}{call};");
            return;
        }
        let var = self.fresh(base);
        let _ = writeln!(out, "{indent}const {var} = {call};");
        let _ = writeln!(out, "{indent}if ({var} !== null) {{");
        let compared = if suffix.is_empty() {
            var.clone()
        } else {
            format!("({var}{suffix})")
        };
        self.value_rules(value, &compared, f, out, &format!("{indent}  "));
        let _ = writeln!(out, "{indent}}}");
    }

    /// Checks of one object member: `missing` when a required one is absent (JavaScript callers
    /// can get past the types), then its type and rules.
    fn member_checks(&mut self, member: &Member, object: &str, out: &mut String) {
        let name = &member.field.name;
        let access = format!("{object}.{name}");
        let mut body = String::new();
        self.checks(&member.value, &access, Some(name), &mut body, "    ");
        if member.required {
            let _ = writeln!(
                out,
                "  if ({access} === undefined || {access} === null) {{\n    cx.report(\"missing\", {}, \"reject\", {});\n  }} else {{",
                lit(name),
                lit(&member.missing)
            );
        } else {
            let _ = writeln!(out, "  if ({access} !== undefined && {access} !== null) {{");
        }
        out.push_str(&body);
        let _ = writeln!(out, "  }}");
    }

    // ----- records -----------------------------------------------------------------------------

    /// Property lines of an interface (a variant's discriminator as its literal type).
    fn properties(&self, record: &Record, out: &mut String) {
        for member in &record.members {
            let field = member.field;
            let ty = match member.constant {
                Some(value) => lit(value),
                None => self.ts_type(&member.value.kind),
            };
            let mut doc = String::new();
            if let Some(d) = &field.description {
                doc.push_str(&doc_text(d));
                doc.push(' ');
            }
            let personal = if field.pii.is_personal() {
                ", personal data"
            } else {
                ""
            };
            let _ = write!(
                doc,
                "(`{}`, id {}, {}{personal})",
                field.name,
                field.id,
                field.ty.name()
            );
            let optional = if member.required { "" } else { "?" };
            let _ = writeln!(out, "  /** {doc} */\n  {}{optional}: {ty};", field.name);
        }
    }

    /// Property lines of a decoded object literal (from the map `o`).
    fn decoded(&self, record: &Record, out: &mut String, indent: &str) {
        for member in record.members.iter().filter(|m| m.constant.is_none()) {
            let how = if member.required {
                "required"
            } else {
                "optional"
            };
            let _ = writeln!(
                out,
                "{indent}{}: rt.read.{how}(o.get({}), {}),",
                member.field.name,
                lit(&member.field.name),
                self.reader(&member.value.kind)
            );
        }
        for member in &record.members {
            if let Some(value) = member.constant {
                let _ = writeln!(out, "{indent}{}: {},", member.field.name, lit(value));
            }
        }
    }

    /// `function encodeX`: each present member's JSON.
    fn encoder(&self, record: &Record, out: &mut String) {
        let name = &record.name;
        let _ = writeln!(
            out,
            "function encode{name}(value: {name}): string {{\n  const parts: string[] = [];"
        );
        for member in &record.members {
            let writer = self.writer(&member.value.kind);
            let key = lit(&format!("{}:", lit(&member.field.name)));
            let access = format!("value.{}", member.field.name);
            if member.required {
                let _ = writeln!(out, "  parts.push({key} + {writer}({access}));");
            } else {
                let _ = writeln!(
                    out,
                    "  if ({access} !== undefined && {access} !== null) parts.push({key} + {writer}({access}));"
                );
            }
        }
        let _ = writeln!(out, "  return `{{${{parts.join(\",\")}}}}`;\n}}\n");
    }

    /// `function checkX`: every member's checks (never the discriminator's constant).
    fn checker(&mut self, record: &Record, out: &mut String) {
        let name = &record.name;
        let _ = writeln!(
            out,
            "function check{name}(cx: rt.Checker, value: {name}, now: number): void {{"
        );
        if !record.uses_now {
            let _ = writeln!(out, "  void now;");
        }
        for member in record.members.iter().filter(|m| m.constant.is_none()) {
            self.member_checks(member, "value", out);
        }
        let _ = writeln!(out, "}}\n");
    }

    /// `o`: the decoded object's keys, refusing undeclared ones when the contract does.
    fn object_reader(&self, record: &Record, source: &str) -> String {
        let allowed = match self.plan.allowed_keys(record) {
            Some(names) => {
                let quoted: Vec<String> = names.iter().map(|n| lit(n)).collect();
                format!("[{}]", quoted.join(", "))
            }
            None => "null".into(),
        };
        format!("const o = rt.read.object({source}, {allowed});")
    }

    fn struct_items(&mut self, record: &Record) -> String {
        let name = &record.name;
        let mut out = format!("export interface {name} {{\n");
        self.properties(record, &mut out);
        let _ = writeln!(out, "}}\n");
        let _ = writeln!(
            out,
            "function decode{name}(value: rt.JsonValue): {name} {{\n  {}\n  return {{",
            self.object_reader(record, "value")
        );
        self.decoded(record, &mut out, "    ");
        let _ = writeln!(out, "  }};\n}}\n");
        self.encoder(record, &mut out);
        self.checker(record, &mut out);
        out
    }

    /// Interface, constructor, encode and check functions of one event shape.
    fn event_shape(&mut self, record: &Record) -> String {
        let c = self.plan.contract;
        let name = &record.name;
        let mut out = match (self.plan.discriminator, record.variant) {
            (Some(d), Some(v)) => format!(
                "/** `{d}: {}`{} */\n",
                doc_text(&v.value),
                v.description
                    .as_ref()
                    .map(|d| format!(": {}", doc_text(d)))
                    .unwrap_or_default()
            ),
            _ => format!("/** One `{}` event. */\n", c.name),
        };
        let _ = writeln!(out, "export interface {name} {{");
        self.properties(record, &mut out);
        let _ = writeln!(out, "}}\n");
        out.push_str(&self.constructor(record));
        self.encoder(record, &mut out);
        self.checker(record, &mut out);
        out
    }

    /// `makeX`: the event with its id made (when the contract deduplicates) and its
    /// discriminator set.
    fn constructor(&self, record: &Record) -> String {
        let name = &record.name;
        let mut made: Vec<String> = Vec::new();
        for member in record.members.iter().filter(|m| m.made_with_event) {
            made.push(format!("{0}: fields.{0} ?? rt.uuidv7()", member.field.name));
        }
        match (self.plan.discriminator, record.variant) {
            (Some(d), Some(v)) => {
                made.push(format!("{d}: {}", lit(&v.value)));
                format!(
                    "/** A `{}` event: every required field is a required property. */\nexport function make{name}(fields: Omit<{name}, {}>): {name} {{\n  return {{ ...fields, {} }};\n}}\n\n",
                    doc_text(&v.value),
                    lit(d),
                    made.join(", ")
                )
            }
            _ => {
                let rest: String = made.iter().map(|m| format!(", {m}")).collect();
                format!(
                    "/** An event: every required field is a required property. */\nexport function make{name}(fields: {name}): {name} {{\n  return {{ ...fields{rest} }};\n}}\n\n"
                )
            }
        }
    }

    // ----- the module --------------------------------------------------------------------------

    fn render(mut self) -> String {
        let plan = self.plan;
        let mut out = self.preamble();
        out.push_str(&self.statics());
        for record in &plan.records {
            let code = self.struct_items(record);
            out.push_str(&code);
        }
        for record in &plan.events {
            let code = self.event_shape(record);
            out.push_str(&code);
        }
        if let Some(d) = plan.discriminator {
            let names: Vec<&str> = plan.events.iter().map(|r| r.name.as_str()).collect();
            let _ = writeln!(out, "/** Any `{}` event, by `{d}`. */", plan.contract.name);
            let _ = writeln!(out, "export type Event = {};\n", names.join(" | "));
        }
        out.push_str(&self.validate());
        out.push_str(&self.encode());
        out.push_str(&self.decode());
        out.push_str(&self.contract_info());
        out
    }

    fn preamble(&self) -> String {
        let c = self.plan.contract;
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
        let _ = writeln!(
            out,
            " */\n\nimport * as rt from \"./contractc-runtime.js\";\n"
        );
        let _ = writeln!(
            out,
            "export {{ BatchError, ContractClient, ContractViolationError, DecodeError, FileStore, HttpError, MemoryStore, localWallClock, verdictOf, webStorage }} from \"./contractc-runtime.js\";"
        );
        let _ = writeln!(
            out,
            "export type {{ BatchEventResult, BatchOutcome, BatchResult, ClientOptions, FlushResult, KeyValueStore, ProvidedToken, SendResult, TokenProvider, Violation }} from \"./contractc-runtime.js\";\n"
        );
        let _ = writeln!(
            out,
            "/** The contract's name. */\nexport const NAME = {};",
            lit(&c.name)
        );
        let _ = writeln!(
            out,
            "/** The contract version this module was generated from (sent as `X-Contract-Version`). */\nexport const VERSION = {};",
            lit(&c.version.to_string())
        );
        let _ = writeln!(
            out,
            "/** SHA-256 of the contract file. */\nexport const FINGERPRINT = {};\n",
            lit(&c.source.fingerprint)
        );
        out
    }

    /// The patterns and timestamp formats, declared before the types.
    fn statics(&self) -> String {
        let mut out = String::new();
        for (index, pattern) in self.plan.patterns.iter().enumerate() {
            let _ = writeln!(
                out,
                "/** `{}`, full-match. */\nconst PATTERN_{index} = new RegExp({}, \"u\");",
                doc_text(pattern),
                lit(&format!("^(?:{})$", unicode_mode(pattern)))
            );
        }
        for (index, format) in self.plan.formats.iter().enumerate() {
            let items: Vec<String> = format.items.iter().map(format_item).collect();
            let _ = writeln!(
                out,
                "/** The timestamp format `{}`. */\nconst FORMAT_{index}: readonly rt.FormatItem[] = [{}];",
                doc_text(&format.pattern),
                items.join(", ")
            );
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out
    }

    /// `validate`: the event's shape's checks (a `switch` on the discriminator).
    fn validate(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "/**\n * Every violation the server would report for the rules a typed event can break, with\n * the same code, path, policy and message. `now` stands for the server's ingest time.\n */\nexport function validate(event: Event, now: Date = new Date()): rt.Violation[] {\n  const cx = new rt.Checker();\n  const nowMicros = now.getTime() * 1000;\n",
        );
        match plan.discriminator {
            Some(d) => {
                let _ = writeln!(out, "  switch (event.{d}) {{");
                for record in &plan.events {
                    let value = record.variant.map(|v| v.value.as_str()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    case {}:\n      check{}(cx, event, nowMicros);\n      break;",
                        lit(value),
                        record.name
                    );
                }
                // Only JavaScript callers reach `default`; the message does not quote the value.
                let _ = writeln!(
                    out,
                    "    default: {{\n      const other: never = event;\n      void other;\n      cx.report(\"one_of\", {}, \"reject\", {});\n    }}\n  }}",
                    lit(d),
                    lit(plan.unknown_variant.as_deref().unwrap_or_default())
                );
            }
            None => out.push_str("  checkEvent(cx, event, nowMicros);\n"),
        }
        out.push_str("  return cx.violations;\n}\n\n");
        out
    }

    fn encode(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "/** The event as the JSON body the server expects. */\nexport function encode(event: Event): string {\n",
        );
        match plan.discriminator {
            Some(d) => {
                let _ = writeln!(out, "  switch (event.{d}) {{");
                for record in &plan.events {
                    let value = record.variant.map(|v| v.value.as_str()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    case {}:\n      return encode{}(event);",
                        lit(value),
                        record.name
                    );
                }
                out.push_str("  }\n");
            }
            None => out.push_str("  return encodeEvent(event);\n"),
        }
        out.push_str("}\n\n");
        out
    }

    fn decode(&self) -> String {
        let plan = self.plan;
        let mut out = String::from(
            "/**\n * A JSON body as a typed event; throws `DecodeError` when the types cannot hold it (wrong\n * JSON types, unknown or duplicate keys, missing required fields, unknown variants,\n * unparseable timestamps). Then `validate` judges the rules.\n */\nexport function decode(text: string): Event {\n  const root = rt.parseJson(text);\n",
        );
        match plan.discriminator {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "  const kind = rt.read.required(rt.read.object(root, null).get({}), rt.read.string);\n  switch (kind) {{",
                    lit(d)
                );
                for record in &plan.events {
                    let value = record.variant.map(|v| v.value.as_str()).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "    case {}: {{\n      {}\n      return {{",
                        lit(value),
                        self.object_reader(record, "root")
                    );
                    self.decoded(record, &mut out, "        ");
                    out.push_str("      };\n    }\n");
                }
                let _ = writeln!(
                    out,
                    "    default:\n      throw new rt.DecodeError(`unknown {d} ${{rt.quote(kind)}}`);\n  }}"
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "  {}\n  return {{",
                    self.object_reader(&plan.events[0], "root")
                );
                self.decoded(&plan.events[0], &mut out, "    ");
                out.push_str("  };\n");
            }
        }
        out.push_str("}\n\n");
        out
    }

    fn contract_info(&self) -> String {
        let ingest = &self.plan.contract.ingest;
        format!(
            "/** The contract as the client needs it. */\nexport const CONTRACT: rt.ContractInfo<Event> = {{\n  name: NAME,\n  version: VERSION,\n  route: {},\n  batchRoute: {},\n  maxBodyBytes: {},\n  maxBatchEvents: {},\n  validate,\n  encode,\n}};\n\n/** A client for this contract: `createClient({{ baseUrl: \"https://host/prod/\" }})`. */\nexport function createClient(options: rt.ClientOptions): rt.ContractClient<Event> {{\n  return new rt.ContractClient(CONTRACT, options);\n}}\n",
            lit(&ingest.route),
            ingest
                .batch_route
                .as_deref()
                .map_or_else(|| "null".to_string(), lit),
            ingest.max_body_bytes,
            ingest.max_batch_events
        )
    }
}

/// How this language spells the pieces of a check.
const SPELLING: Spelling = Spelling {
    literal: lit,
    policy: |p| lit(p.as_str()),
    no_field: "null",
    step: "  ",
    enter_key: "cx.enterKey({k});",
    leave: "cx.leave();",
    char_length: "rt.charLength({v})",
    count: "{n}",
    micros: "{n}",
    no_match: "!PATTERN_{i}.test({v})",
    int_bound: "{v} {op} {n}n",
    float_bound_on_int: "Number({v}) {op} {x}",
    float_bound: "{v} {op} {x}",
    decimal_bound: "{v} {op} {unscaled}n",
    not_in: "!([{values}] as {type}[]).includes({v})",
    string_type: "string",
    int_type: "bigint",
    string_member: "{s}",
    int_member: "{n}n",
    report: "{indent}if ({failed}) {\n{indent}  cx.report({code}, {field}, {policy}, {message});\n{indent}}\n",
};

impl CheckWriter for Module<'_, '_> {
    fn spelling(&self) -> &'static Spelling {
        &SPELLING
    }

    fn counter(&mut self) -> &mut usize {
        &mut self.counter
    }

    /// Statements checking `expr` (present) against its type and rules, with violations
    /// reported at `field` under the checker's current path.
    fn checks(
        &mut self,
        value: &Value,
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let f = self.field_arg(field);
        let (call, base, suffix) = match &value.kind {
            Kind::Boolean => return,
            Kind::String => {
                if !value.rules.is_empty() {
                    let v = self.fresh("s");
                    let _ = writeln!(out, "{indent}{{\n{indent}  const {v} = {expr};");
                    self.value_rules(value, &v, &f, out, &format!("{indent}  "));
                    let _ = writeln!(out, "{indent}}}");
                }
                return;
            }
            Kind::Uuid => {
                let _ = writeln!(out, "{indent}rt.checkUuid(cx, {f}, {expr});");
                return;
            }
            Kind::Int | Kind::Long => {
                let (min, max, name) = match value.kind {
                    Kind::Int => ("rt.INT_MIN", "rt.INT_MAX", "an int"),
                    _ => ("rt.LONG_MIN", "rt.LONG_MAX", "a long"),
                };
                let call = format!("rt.checkInteger(cx, {f}, {expr}, {min}, {max}, \"{name}\")");
                (call, "n", "")
            }
            Kind::Float | Kind::Double => {
                let is_float = matches!(value.kind, Kind::Float);
                (
                    format!("rt.checkNumber(cx, {f}, {expr}, {is_float})"),
                    "x",
                    "",
                )
            }
            Kind::Decimal { precision, scale } => (
                format!("rt.checkDecimal(cx, {f}, {expr}, {precision}, {scale})"),
                "d",
                "",
            ),
            Kind::Date => (
                format!("rt.checkDate(cx, {f}, {expr})"),
                "day",
                " * 86_400_000_000",
            ),
            Kind::Timestamp { .. } | Kind::TimestampTz => {
                (format!("rt.dateMicros(cx, {f}, {expr})"), "t", "")
            }
            Kind::List(e) => return self.list_checks(value, e, expr, field, out, indent),
            Kind::Map { key, value: item } => {
                return self.map_checks(value, key, item, expr, field, out, indent);
            }
            Kind::Record(index) => {
                let name = self.record_name(*index);
                let call = format!("{indent}check{name}(cx, {expr}, now);\n");
                self.entered(field, &call, out, indent);
                return;
            }
        };
        self.guarded(value, base, &call, suffix, &f, out, indent);
    }

    /// Items are checked when present: JavaScript callers can put `undefined` or `null` anywhere.
    fn element_checks(&mut self, e: &Element, expr: &str, out: &mut String, indent: &str) {
        let item = self.fresh("item");
        let mut body = String::new();
        self.checks(&e.value, &item, None, &mut body, &format!("{indent}  "));
        if !body.is_empty() {
            let _ = write!(
                out,
                "{indent}const {item} = {expr};\n{indent}if ({item} !== undefined && {item} !== null) {{\n{body}{indent}}}\n"
            );
        }
    }

    fn list_loop(&mut self, expr: &str, indent: &str) -> Loop {
        let items = self.fresh("items");
        let i = self.fresh("i");
        let inner = format!("{indent}  ");
        Loop {
            setup: format!("{inner}const {items} = {expr};\n"),
            head: format!(
                "{inner}for (let {i} = 0; {i} < {items}.length; {i} += 1) {{\n{inner}  cx.enterIndex({i});\n"
            ),
            key: String::new(),
            item: format!("{items}[{i}]"),
            tail: format!("{inner}  cx.leave();\n{inner}}}\n"),
            count: format!("{items}.length"),
            body_indent: format!("{inner}  "),
        }
    }

    fn map_loop(&mut self, expr: &str, indent: &str) -> Loop {
        let map = self.fresh("map");
        let k = self.fresh("key");
        let inner = format!("{indent}  ");
        Loop {
            setup: format!("{inner}const {map} = {expr};\n"),
            head: format!(
                "{inner}for (const {k} of Object.keys({map})) {{\n{inner}  cx.enterKey({k});\n"
            ),
            key: k.clone(),
            item: format!("{map}[{k}]"),
            tail: format!("{inner}  cx.leave();\n{inner}}}\n"),
            count: format!("Object.keys({map}).length"),
            body_indent: format!("{inner}  "),
        }
    }
}

fn format_item(item: &FormatItem) -> String {
    match item {
        FormatItem::Literal(text) => format!("{{ literal: {} }}", lit(text)),
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
    use super::super::test_text::HOSTILE;

    #[test]
    fn literals_are_json_strings_of_the_text() {
        let literal = super::lit(HOSTILE);
        assert_eq!(serde_json::from_str::<String>(&literal).unwrap(), HOSTILE);
        assert!(!literal.contains(['\n', '\r']), "{literal}");
    }

    #[test]
    fn doc_text_stays_on_its_line_and_in_its_comment() {
        let doc = super::doc_text(HOSTILE);
        assert!(!doc.contains("*/"), "{doc}");
        assert!(!doc.contains(['\n', '\r', '\u{2028}', '\u{2029}']), "{doc}");
    }

    #[test]
    fn patterns_lose_the_escapes_unicode_mode_refuses() {
        // A pattern holding `\"` made the module throw when loaded (an invalid regular expression).
        assert_eq!(
            super::unicode_mode(r#"\"a\#\-\<[\-\"\]]\\\.\/\ \d"#),
            r#""a#-<[\-"\]]\\\.\/ \d"#
        );
    }
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
