//! The checks of a client plan as statements: the walk every client language shares (rules in
//! order, lists and maps item by item under their path), over a [`CheckWriter`] that spells each
//! piece in its language. A language writes what differs (its type checks, how it loops, how it
//! compares); the order of the checks, where paths are entered and left, and when a collection
//! needs no loop at all are decided here once.

use super::client_plan::{Element, Kind, Limit, RuleCheck, Test, Value};
use crate::ir::Literal;

/// The pieces of a loop over a list or map, as a language spells them.
pub struct Loop {
    /// Declarations before the loop (e.g. the collection in a local).
    pub setup: String,
    /// The loop's head up to its body, entering the item's path.
    pub head: String,
    /// The key of a map entry (none for lists).
    pub key: String,
    /// The item (maybe null where the contract allows).
    pub item: String,
    /// Leaves the item's path and closes the loop.
    pub tail: String,
    /// The number of items (what length rules compare).
    pub count: String,
    /// The indent of the loop's body.
    pub body_indent: String,
}

/// How one client language writes checks. Implemented by each client backend's module.
pub trait CheckWriter {
    /// A string literal.
    fn lit(&self, text: &str) -> String;
    /// What stands for "no field" (the value is the path's own item).
    fn no_field(&self) -> &'static str;
    /// A fresh local name starting with `base`.
    fn fresh(&mut self, base: &str) -> String;
    /// Statements checking `expr` (present) against its type and rules.
    fn checks(
        &mut self,
        value: &Value,
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    );
    /// Statements checking a list item or map value `expr`, null where the contract allows.
    fn element_checks(&mut self, e: &Element, expr: &str, out: &mut String, indent: &str);
    /// A loop over the list `expr` whose block starts at `indent`.
    fn list_loop(&mut self, expr: &str, indent: &str) -> Loop;
    /// A loop over the map `expr` whose block starts at `indent`.
    fn map_loop(&mut self, expr: &str, indent: &str) -> Loop;
    /// The statements entering the object key `name` and leaving it.
    fn key_scope(&self, name: &str) -> (String, String);
    /// One level of indentation.
    fn step(&self) -> &'static str {
        "    "
    }
    /// A block's opening (after `indent`) and closing lines.
    fn block(&self, indent: &str) -> (String, String) {
        (format!("{indent}{{\n"), format!("{indent}}}\n"))
    }
    /// `v op limit` for a number of `kind`.
    fn compare(&self, v: &str, op: &str, limit: Limit, kind: &Kind) -> String;
    /// The number of characters of the string `v`.
    fn char_length(&self, v: &str) -> String;
    /// An unsigned count literal.
    fn count(&self, n: u64) -> String;
    /// `v` does not fully match the plan's pattern `index`.
    fn no_match(&self, index: usize, v: &str) -> String;
    /// `v` (a string or integer, by `kind`) is none of `values`.
    fn not_in(&self, values: &[Literal], kind: &Kind, v: &str) -> String;
    /// A microsecond offset literal (added to the ingest time).
    fn micros(&self, offset: i64) -> String;
    /// The statement reporting `rule` at `field` when `failed` holds.
    fn report(&self, failed: &str, rule: &RuleCheck, field: &str, indent: &str) -> String;

    /// `field` as the checks pass it: a literal, or "no field".
    fn field_arg(&self, field: Option<&str>) -> String {
        field.map_or_else(|| self.no_field().to_string(), |name| self.lit(name))
    }

    /// One report per rule, in the contract's order; `v` is the value as the rule compares it
    /// (a count for collections, microseconds for times).
    fn rule_checks(
        &self,
        kind: &Kind,
        rules: &[&RuleCheck],
        v: &str,
        f: &str,
        out: &mut String,
        indent: &str,
    ) {
        for rule in rules {
            out.push_str(&self.report(&self.condition(rule, kind, v), rule, f, indent));
        }
    }

    /// The value's own rules (see [`CheckWriter::rule_checks`]).
    fn value_rules(&self, value: &Value, v: &str, f: &str, out: &mut String, indent: &str) {
        let rules: Vec<&RuleCheck> = value.rules.iter().collect();
        self.rule_checks(&value.kind, &rules, v, f, out, indent);
    }

    /// The condition under which `rule` is broken by `v` (of `kind`).
    fn condition(&self, rule: &RuleCheck, kind: &Kind, v: &str) -> String {
        let length = || match kind {
            Kind::String => self.char_length(v),
            _ => v.to_string(),
        };
        match &rule.test {
            Test::Below(limit) => self.compare(v, "<", *limit, kind),
            Test::Above(limit) => self.compare(v, ">", *limit, kind),
            Test::ShorterThan(n) => format!("{} < {}", length(), self.count(*n)),
            Test::LongerThan(n) => format!("{} > {}", length(), self.count(*n)),
            Test::NoMatch(index) => self.no_match(*index, v),
            Test::NotIn(values) => self.not_in(values, kind, v),
            Test::Before(offset) => format!("{v} < now + {}", self.micros(*offset)),
            Test::After(offset) => format!("{v} > now + {}", self.micros(*offset)),
        }
    }

    /// `body` between entering the object key `field` and leaving it (alone without a key).
    fn entered(&self, field: Option<&str>, body: &str, out: &mut String, indent: &str) {
        match field {
            Some(name) => {
                let (enter, leave) = self.key_scope(name);
                out.push_str(&format!("{indent}{enter}\n{body}{indent}{leave}\n"));
            }
            None => out.push_str(body),
        }
    }

    /// A list: each item under its index, then the list's own rules on its count; nothing when
    /// neither checks anything.
    fn list_checks(
        &mut self,
        value: &Value,
        e: &Element,
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let each = self.list_loop(expr, indent);
        let mut body = String::new();
        self.element_checks(e, &each.item, &mut body, &each.body_indent);
        self.collection(value, each, body, field, out, indent);
    }

    /// A map: each key and value under the key, then the map's own rules on its count.
    #[allow(clippy::too_many_arguments)]
    fn map_checks(
        &mut self,
        value: &Value,
        key: &Element,
        item: &Element,
        expr: &str,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        let each = self.map_loop(expr, indent);
        let mut body = String::new();
        self.checks(&key.value, &each.key, None, &mut body, &each.body_indent);
        self.element_checks(item, &each.item, &mut body, &each.body_indent);
        self.collection(value, each, body, field, out, indent);
    }

    /// The block of a list or map check: the loop (when its body checks anything) under the
    /// field's key, then the collection's rules.
    fn collection(
        &mut self,
        value: &Value,
        each: Loop,
        body: String,
        field: Option<&str>,
        out: &mut String,
        indent: &str,
    ) {
        if body.is_empty() && value.rules.is_empty() {
            return;
        }
        let inner = format!("{indent}{}", self.step());
        let (open, close) = self.block(indent);
        out.push_str(&open);
        out.push_str(&each.setup);
        if !body.is_empty() {
            let looped = format!("{}{body}{}", each.head, each.tail);
            self.entered(field, &looped, out, &inner);
        }
        let f = self.field_arg(field);
        self.value_rules(value, &each.count, &f, out, &inner);
        out.push_str(&close);
    }
}
