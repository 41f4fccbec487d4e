//! The checks of a client plan as statements: the walk every client language shares (rules in
//! order, lists and maps item by item under their path), over a [`CheckWriter`] that spells each
//! piece in its language. A language writes what differs (its type checks, how it loops, how it
//! compares); the order of the checks, where paths are entered and left, and when a collection
//! needs no loop at all are decided here once.

use super::client_plan::{Element, Kind, Limit, RuleCheck, Test, Value};
use crate::ir::{Literal, Policy};

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

/// How one language spells the small pieces of a check: templates whose `{v}` (the value),
/// `{op}`, `{n}`, `{x}`, `{i}`, `{k}`, `{values}`... are filled in by [`fill`].
pub struct Spelling {
    /// A string literal.
    pub literal: fn(&str) -> String,
    /// A rule's policy.
    pub policy: fn(Policy) -> String,
    /// What stands for "no field" (the value is the path's own item).
    pub no_field: &'static str,
    /// One level of indentation.
    pub step: &'static str,
    /// Entering the object key `{k}` (a literal), and leaving it.
    pub enter_key: &'static str,
    pub leave: &'static str,
    /// The number of characters of the string `{v}`.
    pub char_length: &'static str,
    /// An unsigned count `{n}`, and a microsecond offset `{n}`.
    pub count: &'static str,
    pub micros: &'static str,
    /// `{v}` does not fully match pattern `{i}`.
    pub no_match: &'static str,
    /// `{v} {op}` an integer bound `{n}`; a fractional bound `{x}` on an integer; on a float.
    pub int_bound: &'static str,
    pub float_bound_on_int: &'static str,
    pub float_bound: &'static str,
    /// `{v} {op}` a decimal bound: `{unscaled}` at the decimal's scale, or `{written}`.
    pub decimal_bound: &'static str,
    /// `{v}` is none of `{values}` (a list of `{type}`); members spelled by the next two.
    pub not_in: &'static str,
    pub string_type: &'static str,
    pub int_type: &'static str,
    pub string_member: &'static str,
    pub int_member: &'static str,
    /// Reporting `{code}`, `{field}`, `{policy}`, `{message}` when `{failed}` holds.
    pub report: &'static str,
}

/// `template` with each `{name}` of `values` replaced (in one pass: a value is never read as a
/// template); other braces stay as they are.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let known = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, close))
        });
        match known {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// How one client language writes checks. Implemented by each client backend's module: its
/// spelling, and the statements that differ in shape between languages.
pub trait CheckWriter {
    fn spelling(&self) -> &'static Spelling;
    /// The counter of fresh local names.
    fn counter(&mut self) -> &mut usize;
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
    /// A block's opening (after `indent`) and closing lines.
    fn block(&self, indent: &str) -> (String, String) {
        (format!("{indent}{{\n"), format!("{indent}}}\n"))
    }

    /// A fresh local name starting with `base`.
    fn fresh(&mut self, base: &str) -> String {
        let counter = self.counter();
        *counter += 1;
        format!("{base}{counter}")
    }

    fn lit(&self, text: &str) -> String {
        (self.spelling().literal)(text)
    }

    fn step(&self) -> &'static str {
        self.spelling().step
    }

    /// The statements entering the object key `name` and leaving it.
    fn key_scope(&self, name: &str) -> (String, String) {
        let s = self.spelling();
        (
            fill(s.enter_key, &[("k", &self.lit(name))]),
            s.leave.to_string(),
        )
    }

    /// `v op limit` for a number of `kind`.
    fn compare(&self, v: &str, op: &str, limit: Limit, kind: &Kind) -> String {
        let s = self.spelling();
        match limit {
            Limit::Decimal { written, unscaled } => fill(
                s.decimal_bound,
                &[
                    ("v", v),
                    ("op", op),
                    ("unscaled", &unscaled.to_string()),
                    ("written", &written.to_string()),
                ],
            ),
            Limit::Int(n) => fill(s.int_bound, &[("v", v), ("op", op), ("n", &n.to_string())]),
            Limit::Float(x) => {
                let template = match kind {
                    Kind::Int | Kind::Long => s.float_bound_on_int,
                    _ => s.float_bound,
                };
                fill(template, &[("v", v), ("op", op), ("x", &format!("{x:?}"))])
            }
        }
    }

    /// `v` (a string or integer, by `kind`) is none of `values`.
    fn not_in(&self, values: &[Literal], kind: &Kind, v: &str) -> String {
        let s = self.spelling();
        let members: Vec<String> = values
            .iter()
            .map(|l| match l {
                Literal::String(text) => fill(s.string_member, &[("s", &self.lit(text))]),
                Literal::Int(n) => fill(s.int_member, &[("n", &n.to_string())]),
            })
            .collect();
        let ty = match kind {
            Kind::String => s.string_type,
            _ => s.int_type,
        };
        fill(
            s.not_in,
            &[("v", v), ("values", &members.join(", ")), ("type", ty)],
        )
    }

    /// The statement reporting `rule` at `field` when `failed` holds.
    fn report(&self, failed: &str, rule: &RuleCheck, field: &str, indent: &str) -> String {
        let s = self.spelling();
        fill(
            s.report,
            &[
                ("indent", indent),
                ("failed", failed),
                ("code", &self.lit(rule.code)),
                ("field", field),
                ("policy", &(s.policy)(rule.policy)),
                ("message", &self.lit(&rule.message)),
            ],
        )
    }

    /// `field` as the checks pass it: a literal, or "no field".
    fn field_arg(&self, field: Option<&str>) -> String {
        field.map_or_else(
            || self.spelling().no_field.to_string(),
            |name| self.lit(name),
        )
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
        let s = self.spelling();
        let length = || match kind {
            Kind::String => fill(s.char_length, &[("v", v)]),
            _ => v.to_string(),
        };
        let count = |n: u64| fill(s.count, &[("n", &n.to_string())]);
        let micros = |n: i64| fill(s.micros, &[("n", &n.to_string())]);
        match &rule.test {
            Test::Below(limit) => self.compare(v, "<", *limit, kind),
            Test::Above(limit) => self.compare(v, ">", *limit, kind),
            Test::ShorterThan(n) => format!("{} < {}", length(), count(*n)),
            Test::LongerThan(n) => format!("{} > {}", length(), count(*n)),
            Test::NoMatch(index) => fill(s.no_match, &[("i", &index.to_string()), ("v", v)]),
            Test::NotIn(values) => self.not_in(values, kind, v),
            Test::Before(offset) => format!("{v} < now + {}", micros(*offset)),
            Test::After(offset) => format!("{v} > now + {}", micros(*offset)),
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

#[cfg(test)]
mod tests {
    use super::fill;

    #[test]
    fn fill_replaces_known_names_once_and_keeps_other_braces() {
        assert_eq!(
            fill("{v} {op} {n}n", &[("v", "x"), ("op", "<"), ("n", "5")]),
            "x < 5n"
        );
        // A value is never read as a template: a message may hold `{v}`.
        assert_eq!(
            fill("report({message})", &[("message", "\"{v}\""), ("v", "x")]),
            "report(\"{v}\")"
        );
        assert_eq!(
            fill("if (a) {\n{indent}}", &[("indent", "  ")]),
            "if (a) {\n  }"
        );
        assert_eq!(
            fill("allowed{{values}}", &[("values", "1, 2")]),
            "allowed{1, 2}"
        );
        assert_eq!(fill("{unknown}", &[]), "{unknown}");
    }
}
