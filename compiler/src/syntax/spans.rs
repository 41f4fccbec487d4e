//! Where every YAML node is, keyed by JSON pointer.
//!
//! `serde_yaml` gives values but no positions. A second, event-level pass with `saphyr-parser`
//! records the key and value span of every node under the same JSON pointer that the JSON Schema
//! validator and the checker use, so any diagnostic can point at the exact token. The pass also
//! finds duplicate keys with both positions. If the two parsers ever disagree on a node, a
//! diagnostic falls back to the nearest ancestor that has a span, never to a wrong one.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser};

use crate::source::Span;

#[derive(Debug, Clone, Copy)]
pub struct NodeSpans {
    /// The mapping key naming this node, if it is a mapping value.
    pub key: Option<Span>,
    /// The node itself: a scalar's token, or a collection from its first to its last token.
    pub value: Span,
}

/// A key that appears twice in one mapping.
#[derive(Debug, Clone)]
pub struct DuplicateKey {
    pub key: String,
    pub first: Span,
    pub second: Span,
}

#[derive(Debug, Default)]
pub struct SpanIndex {
    nodes: HashMap<String, NodeSpans>,
    pub duplicates: Vec<DuplicateKey>,
}

enum Frame {
    Mapping {
        pointer: Option<String>,
        pending_key: Option<(String, Span)>,
        seen: HashMap<String, Span>,
    },
    Sequence {
        pointer: Option<String>,
        next_index: usize,
    },
}

enum Slot {
    /// The node is a mapping key.
    Key,
    /// The node is a value at this pointer (None inside a complex key, which has no pointer).
    Value(Option<String>, Option<Span>),
}

pub fn escape_pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

impl SpanIndex {
    pub fn build(text: &str) -> SpanIndex {
        // saphyr counts characters; spans are bytes.
        let char_to_byte: Vec<usize> = text
            .char_indices()
            .map(|(b, _)| b)
            .chain(std::iter::once(text.len()))
            .collect();
        let to_span = |span: saphyr_parser::Span| {
            let byte = |index: usize| char_to_byte.get(index).copied().unwrap_or(text.len());
            Span::new(byte(span.start.index()), byte(span.end.index()))
        };

        let mut index = SpanIndex::default();
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0;
        for item in Parser::new_from_str(text) {
            // Syntax errors are reported by serde_yaml; the index keeps what it saw so far.
            let Ok((event, raw_span)) = item else { break };
            let span = to_span(raw_span);
            match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        break;
                    }
                }
                Event::Scalar(value, ..) => match index.slot(&mut stack) {
                    Slot::Key => index.set_key(&mut stack, value.to_string(), span),
                    Slot::Value(pointer, key) => index.insert(pointer, key, span),
                },
                Event::Alias(_) => match index.slot(&mut stack) {
                    Slot::Key => index.set_key(&mut stack, "*alias".to_string(), span),
                    Slot::Value(pointer, key) => index.insert(pointer, key, span),
                },
                Event::MappingStart(..) | Event::SequenceStart(..) => {
                    let pointer = match index.slot(&mut stack) {
                        // A collection used as a key: walk it without recording anything.
                        Slot::Key => None,
                        Slot::Value(pointer, key) => {
                            index.insert(pointer.clone(), key, span);
                            pointer
                        }
                    };
                    stack.push(if matches!(event, Event::MappingStart(..)) {
                        Frame::Mapping {
                            pointer,
                            pending_key: None,
                            seen: HashMap::new(),
                        }
                    } else {
                        Frame::Sequence {
                            pointer,
                            next_index: 0,
                        }
                    });
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let (pointer, was_key) = match stack.pop() {
                        Some(Frame::Mapping { pointer, .. } | Frame::Sequence { pointer, .. }) => {
                            (pointer.clone(), pointer.is_none())
                        }
                        None => (None, false),
                    };
                    if let Some(pointer) = pointer {
                        if let Some(node) = index.nodes.get_mut(&pointer) {
                            node.value.end = node.value.end.max(span.end);
                        }
                    } else if was_key && in_key_position(&stack) {
                        index.set_key(&mut stack, "*complex".to_string(), span);
                    }
                }
                _ => {}
            }
        }
        index
    }

    fn slot(&self, stack: &mut [Frame]) -> Slot {
        match stack.last_mut() {
            None => Slot::Value(Some(String::new()), None),
            Some(Frame::Mapping {
                pending_key: None, ..
            }) => Slot::Key,
            Some(Frame::Mapping {
                pointer,
                pending_key,
                ..
            }) => {
                let (key, key_span) = pending_key.take().unwrap_or_default();
                let child = pointer
                    .as_ref()
                    .map(|p| format!("{p}/{}", escape_pointer_segment(&key)));
                Slot::Value(child, Some(key_span))
            }
            Some(Frame::Sequence {
                pointer,
                next_index,
            }) => {
                let child = pointer.as_ref().map(|p| format!("{p}/{next_index}"));
                *next_index += 1;
                Slot::Value(child, None)
            }
        }
    }

    fn set_key(&mut self, stack: &mut [Frame], key: String, span: Span) {
        if let Some(Frame::Mapping {
            pointer,
            pending_key,
            seen,
        }) = stack.last_mut()
        {
            if pointer.is_some() {
                if let Some(first) = seen.get(&key) {
                    self.duplicates.push(DuplicateKey {
                        key: key.clone(),
                        first: *first,
                        second: span,
                    });
                } else {
                    seen.insert(key.clone(), span);
                }
            }
            *pending_key = Some((key, span));
        }
    }

    fn insert(&mut self, pointer: Option<String>, key: Option<Span>, value: Span) {
        if let Some(pointer) = pointer {
            // The first occurrence wins, as in serde_yaml (which rejects duplicates anyway).
            self.nodes
                .entry(pointer)
                .or_insert(NodeSpans { key, value });
        }
    }

    /// The spans of the node at `pointer`, or of its nearest ancestor that has some.
    pub fn lookup(&self, pointer: &str) -> Option<(NodeSpans, bool)> {
        let mut current = pointer;
        loop {
            if let Some(node) = self.nodes.get(current) {
                return Some((*node, current.len() == pointer.len()));
            }
            let cut = current.rfind('/')?;
            current = &current[..cut];
        }
    }

    /// The value span of `pointer` (or its nearest ancestor's).
    pub fn value(&self, pointer: &str) -> Option<Span> {
        self.lookup(pointer).map(|(node, _)| node.value)
    }

    /// The key span of `pointer` if it is a mapping value, else its value span.
    pub fn key_or_value(&self, pointer: &str) -> Option<Span> {
        self.lookup(pointer)
            .map(|(node, _)| node.key.unwrap_or(node.value))
    }
}

fn in_key_position(stack: &[Frame]) -> bool {
    matches!(
        stack.last(),
        Some(Frame::Mapping {
            pending_key: None,
            ..
        })
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_at(text: &str, span: Span) -> &str {
        &text[span.range()]
    }

    #[test]
    fn records_keys_and_values_by_pointer() {
        let text = "a: 1\nlist:\n  - name: x\n    type: strng\n  - {name: y, type: int}\n";
        let index = SpanIndex::build(text);
        let (node, exact) = index.lookup("/list/0/type").unwrap();
        assert!(exact);
        assert_eq!(text_at(text, node.value), "strng");
        assert_eq!(text_at(text, node.key.unwrap()), "type");
        assert_eq!(text_at(text, index.value("/list/1/name").unwrap()), "y");
        let (_, exact) = index.lookup("/list/1/name/deeper").unwrap();
        assert!(!exact);
    }

    #[test]
    fn spans_are_bytes_after_multibyte_text() {
        let text = "description: \"żółw 🐢\"\ntype: strng\n";
        let index = SpanIndex::build(text);
        assert_eq!(text_at(text, index.value("/type").unwrap()), "strng");
    }

    #[test]
    fn finds_duplicate_keys_with_both_positions() {
        let text = "a: 1\nb: 2\na: 3\n";
        let index = SpanIndex::build(text);
        assert_eq!(index.duplicates.len(), 1);
        let dup = &index.duplicates[0];
        assert_eq!((dup.first.start, dup.second.start), (0, 10));
    }

    #[test]
    fn escapes_pointer_segments() {
        let text = "cases:\n  a/b~c: 1\n";
        let index = SpanIndex::build(text);
        assert!(index.lookup("/cases/a~1b~0c").unwrap().1);
    }
}
