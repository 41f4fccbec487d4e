//! Source files and byte spans.
//!
//! Spans are byte offsets into the file's UTF-8 text; line and column are derived only when a
//! diagnostic is rendered. Columns count characters (as rustc does), so a caret lands under the
//! right character even after multibyte text.

use std::ops::Range;
use std::sync::Arc;

/// A byte range `start..end` in one source file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span {
            start,
            end: end.max(start),
        }
    }

    pub fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// One loaded contract file.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (shown in diagnostics).
    pub name: String,
    pub text: String,
    line_starts: Vec<usize>,
}

/// A 1-based line and 1-based character column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl SourceFile {
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<Self> {
        let text = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Arc::new(SourceFile {
            name: name.into(),
            text,
            line_starts,
        })
    }

    /// Clamps `offset` into the text and back onto a character boundary.
    pub fn clamp(&self, mut offset: usize) -> usize {
        offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    pub fn line_col(&self, offset: usize) -> LineCol {
        let offset = self.clamp(offset);
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        LineCol {
            line: line_index + 1,
            column: self.text[line_start..offset].chars().count() + 1,
        }
    }

    /// The byte offset of 1-based `line` and 1-based character `column` (clamped to the line).
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let start = self.line_starts[line.clamp(1, self.line_starts.len()) - 1];
        let line_span = self.line_span_from(start);
        self.text[line_span.range()]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_span.end, |(i, _)| start + i)
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line.clamp(1, self.line_starts.len()) - 1];
        &self.text[self.line_span_from(start).range()]
    }

    /// The span of the rest of the line that `offset` is on (without the newline).
    pub fn line_span_from(&self, offset: usize) -> Span {
        let offset = self.clamp(offset);
        let mut end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        if end > offset && self.text.as_bytes()[end - 1] == b'\r' {
            end -= 1;
        }
        Span::new(offset, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters_not_bytes() {
        let file = SourceFile::new("t.yaml", "a: 1\ndescription: \"héllo wörld\" bad\n");
        let bad = file.text.find("bad").unwrap();
        assert_eq!(
            file.line_col(bad),
            LineCol {
                line: 2,
                column: 28
            }
        );
        assert_eq!(file.line_col(0), LineCol { line: 1, column: 1 });
    }

    #[test]
    fn clamp_moves_back_to_a_char_boundary() {
        let file = SourceFile::new("t.yaml", "é");
        assert_eq!(file.clamp(1), 0);
        assert_eq!(file.clamp(99), 2);
    }
}
