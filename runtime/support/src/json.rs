//! Parsed JSON as a view over a simd-json tape.
//!
//! simd-json parses into a flat tape of nodes; objects keep every key in order, duplicates
//! included, which is what lets validators report duplicate keys (a `serde_json::Value` would
//! silently keep the last one). Strings borrow from the input buffer.

use simd_json::{Node, StaticNode};

/// Reusable parser state: keep one per thread to avoid reallocating buffers per event.
pub struct Parser {
    buffers: simd_json::Buffers,
    /// A copy of the input: simd-json unescapes strings in place.
    input: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            buffers: simd_json::Buffers::new(1024),
            input: Vec::with_capacity(1024),
        }
    }
}

/// The parsed document: its nodes borrow from the parser's input copy.
pub struct Document<'a> {
    nodes: Vec<Node<'a>>,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    /// Parses `bytes`; on error says what went wrong and at which byte, without the byte
    /// itself (simd-json's own message quotes it, and the message reaches the client, the
    /// quarantine table and the console).
    pub fn parse(&mut self, bytes: &[u8]) -> Result<Document<'_>, String> {
        self.input.clear();
        self.input.extend_from_slice(bytes);
        match simd_json::to_tape_with_buffers(&mut self.input, &mut self.buffers) {
            Ok(tape) => Ok(Document { nodes: tape.0 }),
            Err(error) => Err(format!(
                "{:?} at character {}",
                error.error(),
                error.index()
            )),
        }
    }
}

impl<'a> Document<'a> {
    pub fn root(&self) -> Json<'_, 'a> {
        Json(&self.nodes)
    }
}

/// One JSON value: a slice of the tape starting at the value's node.
#[derive(Clone, Copy)]
pub struct Json<'t, 'a>(&'t [Node<'a>]);

/// The JSON type of a value, as named in messages and JSON Schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Integer => "integer",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

impl<'t, 'a> Json<'t, 'a> {
    fn node(&self) -> Option<&'t Node<'a>> {
        self.0.first()
    }

    /// How many tape nodes this value spans.
    fn width(&self) -> usize {
        match self.node() {
            Some(Node::Object { count, .. } | Node::Array { count, .. }) => count + 1,
            _ => 1,
        }
    }

    pub fn kind(&self) -> Kind {
        match self.node() {
            Some(Node::String(_)) => Kind::String,
            Some(Node::Object { .. }) => Kind::Object,
            Some(Node::Array { .. }) => Kind::Array,
            Some(Node::Static(StaticNode::Bool(_))) => Kind::Boolean,
            Some(Node::Static(StaticNode::I64(_) | StaticNode::U64(_))) => Kind::Integer,
            Some(Node::Static(StaticNode::F64(_))) => Kind::Number,
            _ => Kind::Null,
        }
    }

    pub fn is_null(&self) -> bool {
        self.kind() == Kind::Null
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match self.node() {
            Some(Node::String(s)) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.node() {
            Some(Node::Static(StaticNode::Bool(b))) => Some(*b),
            _ => None,
        }
    }

    pub fn as_static(&self) -> Option<StaticNode> {
        match self.node() {
            Some(Node::Static(s)) => Some(*s),
            _ => None,
        }
    }

    /// The members of an object, in input order, duplicates included.
    pub fn members(&self) -> Option<Members<'t, 'a>> {
        match self.node() {
            Some(Node::Object { len, .. }) => Some(Members {
                rest: &self.0[1..],
                remaining: *len,
            }),
            _ => None,
        }
    }

    /// The elements of an array.
    pub fn elements(&self) -> Option<Elements<'t, 'a>> {
        match self.node() {
            Some(Node::Array { len, .. }) => Some(Elements {
                rest: &self.0[1..],
                remaining: *len,
            }),
            _ => None,
        }
    }

    /// Number of members or elements (0 for scalars).
    pub fn len(&self) -> usize {
        match self.node() {
            Some(Node::Object { len, .. } | Node::Array { len, .. }) => *len,
            _ => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub struct Members<'t, 'a> {
    rest: &'t [Node<'a>],
    remaining: usize,
}

impl<'t, 'a> Iterator for Members<'t, 'a> {
    type Item = (&'a str, Json<'t, 'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let key = match self.rest.first()? {
            Node::String(key) => *key,
            _ => return None,
        };
        let value = Json(&self.rest[1..]);
        self.rest = &self.rest[(1 + value.width()).min(self.rest.len())..];
        Some((key, value))
    }
}

pub struct Elements<'t, 'a> {
    rest: &'t [Node<'a>],
    remaining: usize,
}

impl<'t, 'a> Iterator for Elements<'t, 'a> {
    type Item = Json<'t, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 || self.rest.is_empty() {
            return None;
        }
        self.remaining -= 1;
        let value = Json(self.rest);
        self.rest = &self.rest[value.width().min(self.rest.len())..];
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_nested_objects_keeping_duplicates() {
        let mut parser = Parser::new();
        let doc = parser
            .parse(br#"{"a": {"x": [1, {"y": 2}], "z": null}, "b": "s\"t", "a": 3}"#)
            .unwrap();
        let root = doc.root();
        let members: Vec<(&str, Kind)> = root
            .members()
            .unwrap()
            .map(|(k, v)| (k, v.kind()))
            .collect();
        assert_eq!(
            members,
            [
                ("a", Kind::Object),
                ("b", Kind::String),
                ("a", Kind::Integer)
            ]
        );
        let (_, a) = root.members().unwrap().next().unwrap();
        let inner: Vec<&str> = a.members().unwrap().map(|(k, _)| k).collect();
        assert_eq!(inner, ["x", "z"]);
        let (_, x) = a.members().unwrap().next().unwrap();
        let kinds: Vec<Kind> = x.elements().unwrap().map(|e| e.kind()).collect();
        assert_eq!(kinds, [Kind::Integer, Kind::Object]);
        let (_, b) = root.members().unwrap().nth(1).unwrap();
        assert_eq!(b.as_str(), Some("s\"t"));
    }

    #[test]
    fn big_integers_are_floats_like_serde_json() {
        let mut parser = Parser::new();
        let doc = parser
            .parse(b"[99999999999999999999, -1, 18446744073709551615, 1.5]")
            .unwrap();
        let kinds: Vec<Kind> = doc.root().elements().unwrap().map(|e| e.kind()).collect();
        assert_eq!(
            kinds,
            [Kind::Number, Kind::Integer, Kind::Integer, Kind::Number]
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        let mut parser = Parser::new();
        for bad in [
            &b"{"[..],
            b"{\"a\":}",
            b"[1,]",
            b"",
            b"\"\\x\"",
            b"{\"a\":1} x",
            b"nul",
        ] {
            assert!(
                parser.parse(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
