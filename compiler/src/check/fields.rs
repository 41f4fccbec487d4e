//! Fields, their types and their ids.

use std::collections::BTreeMap;

use super::Checker;
use crate::diagnostic::Code;
use crate::ir::{Element, Field, FormatItem, TimestampFormat, Type};
use crate::source::Span;
use crate::syntax::ast::{ElementDoc, FieldDoc, ShapeDoc};
use crate::syntax::schema::closest;

/// The `timestamp` format when a field gives none: ISO 8601 without a zone.
pub const DEFAULT_TIMESTAMP_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.f";

/// Who uses each field id, for duplicate and reserved-id checks across the whole schema.
#[derive(Default)]
pub struct IdRegistry {
    by_id: BTreeMap<u32, IdUser>,
}

#[derive(Clone)]
pub struct IdUser {
    pub name: String,
    /// Pointer of the field (or element) that holds the id.
    pub pointer: String,
}

impl IdRegistry {
    pub fn register(&mut self, id: u32, name: &str, pointer: &str, checker: &mut Checker<'_>) {
        if let Some(first) = self.by_id.get(&id) {
            let next_free = self.by_id.keys().next_back().map_or(1, |max| max + 1);
            checker.emit(
                checker
                    .diag(Code::DuplicateId, format!("field id {id} is used twice"))
                    .at(checker.span(&format!("{pointer}/id")), format!("`{name}` uses id {id}"))
                    .also(checker.span(&format!("{}/id", first.pointer)), format!("already used by `{}`", first.name))
                    .help(format!("ids identify columns forever: give `{name}` a new id (the next free one is {next_free})")),
            );
        } else {
            self.by_id.insert(
                id,
                IdUser {
                    name: name.to_string(),
                    pointer: pointer.to_string(),
                },
            );
        }
    }

    pub fn get(&self, id: u32) -> Option<&IdUser> {
        self.by_id.get(&id)
    }

    pub fn by_name(&self, name: &str) -> Option<&IdUser> {
        self.by_id.values().find(|u| u.name == name)
    }
}

impl Checker<'_> {
    /// A list of sibling fields: names unique among them.
    pub fn fields(&mut self, docs: &[FieldDoc], pointer: &str, ids: &mut IdRegistry) -> Vec<Field> {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            let field_pointer = format!("{pointer}/{i}");
            if let Some(first) = seen.insert(&doc.name, i) {
                self.emit(
                    self.diag(
                        Code::DuplicateName,
                        format!("field `{}` is defined twice", doc.name),
                    )
                    .at(
                        self.span(&format!("{field_pointer}/name")),
                        "defined again here",
                    )
                    .also(
                        self.span(&format!("{pointer}/{first}/name")),
                        "first defined here",
                    )
                    .help("each column has one definition: remove or rename one"),
                );
                continue;
            }
            if let Some(field) = self.field(doc, &field_pointer, ids) {
                out.push(field);
            }
        }
        out
    }

    pub fn field(&mut self, doc: &FieldDoc, pointer: &str, ids: &mut IdRegistry) -> Option<Field> {
        let name_ok = self.identifier(&doc.name, &format!("{pointer}/name"), "field name");
        let id = self.field_id(doc.id, &format!("{pointer}/id"));
        if let Some(id) = id {
            ids.register(id, &doc.name, pointer, self);
        }
        let ty = self.shape(&doc.shape, pointer, &doc.name, ids);
        let rules = match &ty {
            Some(ty) => self.rules(&doc.shape.rules, ty, &format!("{pointer}/rules"), &[]),
            None => None,
        };
        Some(Field {
            name: name_ok.then(|| doc.name.clone())?,
            id: id?,
            ty: ty?,
            required: doc.required.unwrap_or(false),
            description: doc.description.clone(),
            pii: super::privacy::handling(doc.pii),
            rules: rules?,
        })
    }

    fn element(
        &mut self,
        doc: &ElementDoc,
        pointer: &str,
        name: &str,
        ids: &mut IdRegistry,
    ) -> Option<Element> {
        let id = self.field_id(doc.id, &format!("{pointer}/id"));
        if let Some(id) = id {
            ids.register(id, name, pointer, self);
        }
        let ty = self.shape(&doc.shape, pointer, name, ids)?;
        let rules = self.rules(&doc.shape.rules, &ty, &format!("{pointer}/rules"), &[])?;
        Some(Element {
            id: id?,
            ty,
            required: doc.required.unwrap_or(true),
            rules,
        })
    }

    /// The type of a field or element, with its nested parts.
    fn shape(
        &mut self,
        shape: &ShapeDoc,
        pointer: &str,
        name: &str,
        ids: &mut IdRegistry,
    ) -> Option<Type> {
        let ty = match shape.type_name.as_str() {
            "string" => Type::String,
            "boolean" => Type::Boolean,
            "int" => Type::Int,
            "long" => Type::Long,
            "float" => Type::Float,
            "double" => Type::Double,
            "date" => Type::Date,
            "timestamp" => Type::Timestamp {
                format: self.timestamp_format(shape, pointer)?,
            },
            "timestamptz" => Type::TimestampTz,
            "uuid" => Type::Uuid,
            "list" => self.list_type(shape, pointer, name, ids)?,
            "map" => self.map_type(shape, pointer, name, ids)?,
            "struct" => self.struct_type(shape, pointer, ids)?,
            other => self.decimal_type(other, &format!("{pointer}/type"))?,
        };
        self.no_misplaced_parameters(shape, &ty, pointer)
            .then_some(ty)
    }

    /// A `list`: its `items` element.
    fn list_type(
        &mut self,
        shape: &ShapeDoc,
        pointer: &str,
        name: &str,
        ids: &mut IdRegistry,
    ) -> Option<Type> {
        let Some(items) = &shape.items else {
            return self.missing_nested(pointer, "list", "items", "items: { id: N, type: string }");
        };
        let element = self.element(
            items,
            &format!("{pointer}/items"),
            &format!("{name}[]"),
            ids,
        )?;
        Some(Type::List(Box::new(element)))
    }

    /// A `map`: its `keys` and `values` elements, both checked before the keys' type is.
    fn map_type(
        &mut self,
        shape: &ShapeDoc,
        pointer: &str,
        name: &str,
        ids: &mut IdRegistry,
    ) -> Option<Type> {
        let (Some(keys), Some(values)) = (&shape.keys, &shape.values) else {
            return self.missing_nested(
                pointer,
                "map",
                "keys` and `values",
                "keys: { id: N, type: string }, values: { id: M, type: long }",
            );
        };
        let key = self.element(
            keys,
            &format!("{pointer}/keys"),
            &format!("{name}.key"),
            ids,
        );
        let value = self.element(
            values,
            &format!("{pointer}/values"),
            &format!("{name}.value"),
            ids,
        );
        let key = key?;
        if key.ty != Type::String {
            self.emit(
                self.diag(
                    Code::MapKeyNotString,
                    format!("map `{name}` has {} keys", key.ty.name()),
                )
                .at(self.span(&format!("{pointer}/keys/type")), "must be string")
                .help("events are JSON, whose object keys are always strings"),
            );
            return None;
        }
        Some(Type::Map {
            key: Box::new(key),
            value: Box::new(value?),
        })
    }

    /// A `struct`: its member `fields`, none of them in error.
    fn struct_type(
        &mut self,
        shape: &ShapeDoc,
        pointer: &str,
        ids: &mut IdRegistry,
    ) -> Option<Type> {
        let Some(fields) = &shape.fields else {
            return self.missing_nested(
                pointer,
                "struct",
                "fields",
                "fields: [ { name: x, id: N, type: string } ]",
            );
        };
        let before = self.error_count();
        let fields = self.fields(fields, &format!("{pointer}/fields"), ids);
        if self.error_count() > before {
            return None;
        }
        Some(Type::Struct(fields))
    }

    /// Any other type name: a `decimal(P,S)` in range, else an error at `type_pointer`.
    fn decimal_type(&mut self, type_name: &str, type_pointer: &str) -> Option<Type> {
        match parse_decimal(type_name) {
            Some((precision, scale)) if (1..=38).contains(&precision) && scale <= precision => {
                Some(Type::Decimal {
                    precision: precision as u8,
                    scale: scale as u8,
                })
            }
            Some((precision, scale)) => {
                let why = if !(1..=38).contains(&precision) {
                    "precision must be 1..=38"
                } else {
                    "scale cannot exceed precision"
                };
                self.emit(
                    self.diag(
                        Code::InvalidDecimal,
                        format!("invalid decimal({precision},{scale})"),
                    )
                    .at(self.span(type_pointer), why)
                    .help(
                        "Iceberg decimals hold at most 38 digits, `scale` of them after the point",
                    ),
                );
                None
            }
            None => {
                let mut d = self
                    .diag(Code::UnknownType, format!("unknown type `{type_name}`"))
                    .at(self.span(type_pointer), "not a contract type");
                if let Some(best) =
                    closest(type_name, crate::syntax::schema::TYPE_NAMES.iter().copied())
                {
                    d = d.help(format!("did you mean `{best}`?"));
                }
                self.emit(d);
                None
            }
        }
    }

    /// Whether `shape` gives only the parameters of its type `ty`, reporting each one that
    /// belongs to another type: such parameters are mistakes, not decoration.
    fn no_misplaced_parameters(&mut self, shape: &ShapeDoc, ty: &Type, pointer: &str) -> bool {
        let misplaced = [
            (
                "format",
                shape.format.is_some() && !matches!(ty, Type::Timestamp { .. }),
            ),
            (
                "items",
                shape.items.is_some() && !matches!(ty, Type::List(_)),
            ),
            (
                "keys",
                shape.keys.is_some() && !matches!(ty, Type::Map { .. }),
            ),
            (
                "values",
                shape.values.is_some() && !matches!(ty, Type::Map { .. }),
            ),
            (
                "fields",
                shape.fields.is_some() && !matches!(ty, Type::Struct(_)),
            ),
        ];
        let mut ok = true;
        for (key, is_misplaced) in misplaced {
            if is_misplaced {
                ok = false;
                self.misplaced_parameter(key, ty, pointer);
            }
        }
        ok
    }

    /// Reports `key` given on a field of type `ty`, which has no such parameter.
    fn misplaced_parameter(&mut self, key: &str, ty: &Type, pointer: &str) {
        let (code, help) = if key == "format" {
            (
                Code::FormatOnNonTimestamp,
                "`format` describes how a `timestamp` (no zone) is written; timestamptz is always RFC 3339",
            )
        } else {
            (
                Code::MisplacedNestedType,
                "`items` belongs to lists, `keys`/`values` to maps, `fields` to structs",
            )
        };
        self.emit(
            self.diag(code, format!("`{key}` on a field of type {}", ty.name()))
                .at(
                    self.key_span(&format!("{pointer}/{key}")),
                    format!("{} has no `{key}`", ty.name()),
                )
                .help(help),
        );
    }

    fn missing_nested<T>(
        &mut self,
        pointer: &str,
        ty: &str,
        key: &str,
        example: &str,
    ) -> Option<T> {
        self.emit(
            self.diag(Code::MissingNestedType, format!("a {ty} needs `{key}`"))
                .at(
                    self.span(&format!("{pointer}/type")),
                    format!("{ty} without `{key}`"),
                )
                .help(format!("e.g. {example}")),
        );
        None
    }

    fn timestamp_format(&mut self, shape: &ShapeDoc, pointer: &str) -> Option<TimestampFormat> {
        let pattern = shape.format.as_deref().unwrap_or(DEFAULT_TIMESTAMP_FORMAT);
        match parse_timestamp_format(pattern) {
            Ok(items) => Some(TimestampFormat {
                pattern: pattern.to_string(),
                items,
            }),
            Err((offset, len, message)) => {
                let format_pointer = format!("{pointer}/format");
                let whole = self.spans.value(&format_pointer).unwrap_or(Span::new(0, 0));
                let span = self.span_within_scalar(whole, pattern, offset, len);
                self.emit(
                    self.diag(Code::InvalidTimestampFormat, format!("unsupported timestamp format `{pattern}`"))
                        .at(span, message)
                        .help("use %Y %m %d %H %M %S %.f (or %F, %T) and literal separators; %Y, %m and %d are required"),
                );
                None
            }
        }
    }

    /// The span of `value[offset..offset+len]` inside the scalar token `whole`, when the token
    /// spells the value verbatim (plain or simply quoted); else the whole token.
    pub fn span_within_scalar(&self, whole: Span, value: &str, offset: usize, len: usize) -> Span {
        let token = &self.file.text[whole.range()];
        let quote = usize::from(token.starts_with(['"', '\'']));
        if token.get(quote..quote + value.len()) == Some(value) {
            let start = whole.start + quote + offset;
            Span::new(start, start + len.max(1))
        } else {
            whole
        }
    }
}

fn parse_decimal(name: &str) -> Option<(u32, u32)> {
    let inner = name.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (p, s) = inner.split_once(',')?;
    Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
}

/// Parses the strftime subset; on error returns (byte offset, length, message).
pub fn parse_timestamp_format(pattern: &str) -> Result<Vec<FormatItem>, (usize, usize, String)> {
    let mut items: Vec<FormatItem> = Vec::new();
    let mut literal = String::new();
    let mut chars = pattern.char_indices().peekable();
    let push = |items: &mut Vec<FormatItem>, literal: &mut String, item: FormatItem| {
        if !literal.is_empty() {
            items.push(FormatItem::Literal(std::mem::take(literal)));
        }
        items.push(item);
    };
    while let Some((i, c)) = chars.next() {
        if c != '%' {
            if c.is_ascii_alphanumeric() && c != 'T' {
                return Err((
                    i,
                    c.len_utf8(),
                    format!("literal {c:?}: only separators and `T` may appear between fields"),
                ));
            }
            if c.is_control() || c == '\'' {
                return Err((
                    i,
                    c.len_utf8(),
                    format!("literal {c:?} cannot be used in a format"),
                ));
            }
            literal.push(c);
            continue;
        }
        let spec: String = match chars.next() {
            Some((_, '.')) => match chars.next() {
                Some((_, 'f')) => ".f".into(),
                _ => return Err((i, 2, "only `%.f` (fraction) follows `%.`".into())),
            },
            Some((_, s)) => s.to_string(),
            None => return Err((i, 1, "the format ends with a lone `%`".into())),
        };
        let expand: &[FormatItem] = match spec.as_str() {
            "Y" => &[FormatItem::Year],
            "m" => &[FormatItem::Month],
            "d" => &[FormatItem::Day],
            "H" => &[FormatItem::Hour],
            "M" => &[FormatItem::Minute],
            "S" => &[FormatItem::Second],
            ".f" => &[FormatItem::Fraction],
            "%" => {
                literal.push('%');
                &[]
            }
            "F" | "T" => {
                let (a, b, c) = if spec == "F" {
                    (FormatItem::Year, FormatItem::Month, FormatItem::Day)
                } else {
                    (FormatItem::Hour, FormatItem::Minute, FormatItem::Second)
                };
                for (k, item) in [a, b, c].into_iter().enumerate() {
                    if k > 0 {
                        literal.push(if spec == "F" { '-' } else { ':' });
                    }
                    push(&mut items, &mut literal, item);
                }
                &[]
            }
            other => {
                return Err((
                    i,
                    1 + other.len(),
                    format!("`%{other}` is not supported: not every engine parses it the same way"),
                ));
            }
        };
        for item in expand {
            push(&mut items, &mut literal, item.clone());
        }
    }
    if !literal.is_empty() {
        items.push(FormatItem::Literal(literal));
    }
    for required in [FormatItem::Year, FormatItem::Month, FormatItem::Day] {
        let count = items.iter().filter(|i| **i == required).count();
        if count != 1 {
            let what = match required {
                FormatItem::Year => "%Y",
                FormatItem::Month => "%m",
                _ => "%d",
            };
            let msg = if count == 0 {
                format!("{what} is missing")
            } else {
                format!("{what} appears {count} times")
            };
            return Err((0, pattern.len(), msg));
        }
    }
    for (item, needs, msg) in [
        (FormatItem::Minute, FormatItem::Hour, "%M without %H"),
        (FormatItem::Second, FormatItem::Minute, "%S without %M"),
        (FormatItem::Fraction, FormatItem::Second, "%.f without %S"),
    ] {
        if items.contains(&item) && !items.contains(&needs) {
            return Err((0, pattern.len(), msg.to_string()));
        }
    }
    let fields = items
        .iter()
        .filter(|i| !matches!(i, FormatItem::Literal(_)))
        .count();
    let distinct: std::collections::BTreeSet<String> = items
        .iter()
        .filter(|i| !matches!(i, FormatItem::Literal(_)))
        .map(|i| format!("{i:?}"))
        .collect();
    if distinct.len() != fields {
        return Err((0, pattern.len(), "a field appears twice".into()));
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_reference_format() {
        let items = parse_timestamp_format("%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(items.len(), 11);
        assert_eq!(items[1], FormatItem::Literal("-".into()));
        assert_eq!(parse_timestamp_format("%F %T").unwrap(), items);
    }

    #[test]
    fn rejects_unsupported_specifiers_with_their_position() {
        let (offset, len, _) = parse_timestamp_format("%Y-%m-%d %I:%M").unwrap_err();
        assert_eq!((offset, len), (9, 2));
        assert!(parse_timestamp_format("%H:%M").is_err());
        assert!(
            parse_timestamp_format("%Y%m%d%H%M%S").is_ok(),
            "fixed widths need no separators"
        );
        assert!(parse_timestamp_format("%Y-%m-%d %H:%M:%S %Y").is_err());
        assert!(parse_timestamp_format("%Y-%m-%dT%H:%M:%S%.f").is_ok());
    }
}
