//! Athena DDL: `CREATE TABLE … TBLPROPERTIES ('table_type'='ICEBERG')` for both tables.
//!
//! Athena's Iceberg tables have no `uuid` or zoned timestamp type: uuids are `string` and
//! `timestamptz` is `timestamp` (UTC) in this DDL; Glue and the runtime create the tables from
//! the Iceberg JSON, which keeps the exact types. `${warehouse}` is the S3 warehouse prefix.
//!
//! Beside it, `views.sql`: the contract's ready queries (`contract_manifest::views`), which
//! `deploy` creates from the same data.

use contract_manifest::TableDef;

use super::GeneratedFile;
use crate::ir::{Contract, ContractSet, Transform, Valid};

pub fn emit(set: &Valid<ContractSet>) -> Vec<GeneratedFile> {
    set.contracts
        .iter()
        .flat_map(|c| {
            [
                GeneratedFile::new(format!("{}/athena/create-tables.sql", c.name), ddl(c)),
                GeneratedFile::new(format!("{}/athena/views.sql", c.name), views(c)),
            ]
        })
        .collect()
}

/// The views, each statement after a comment saying what its rows are.
fn views(c: &Contract) -> String {
    let manifest = c.manifest();
    let mut out = super::header("--", &c.source.path);
    out.push_str(&format!(
        "-- Contract {} {}: ready queries over its tables, as Athena views (the same SQL runs\n\
         -- on Spark SQL). Days are UTC.\n",
        c.name, c.version
    ));
    let views = manifest.views();
    if views.is_empty() {
        out.push_str("-- This contract has no variants, no time to count days by and no upsert key: no view.\n");
    }
    for view in views {
        out.push('\n');
        out.push_str(&comment(&format!("{}: {}", view.name, view.description)));
        out.push_str(&view.create_statement(&c.table.database));
        out.push_str(";\n");
    }
    out
}

/// `text` as `--` comment lines of at most 100 characters (a longer word stays whole).
fn comment(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("--");
    for word in text.split_whitespace() {
        if line.len() > 2 && line.len() + 1 + word.len() > 100 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("--");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// A string literal of Athena's DDL, which Hive's grammar reads: a backslash escapes the next
/// character (Hive and Spark read `'it''s'` as `'it' 's'`, "its"), so `\` and `'` get one, and
/// line breaks and tabs are written as escapes to keep each comment on its line. A `{` after a
/// `$` gets one too: Hive and Spark substitute `${name}` in a statement's text, literals
/// included (with nothing, for a name they do not know), but not `$\{name}`.
fn quote(text: &str) -> String {
    let mut out = String::from("'");
    for c in text.chars() {
        match c {
            '{' if out.ends_with('$') => out.push_str("\\{"),
            '\\' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn ddl(c: &Contract) -> String {
    let manifest = c.manifest();
    let mut out = super::header("--", &c.source.path);
    out.push_str(&format!(
        "-- Contract {} {}: the events table and its quarantine table.\n",
        c.name, c.version
    ));
    out.push_str(
        "-- Replace ${warehouse} with the S3 warehouse prefix, e.g. s3://my-lake/warehouse.\n\n",
    );
    out.push_str(&create_table(
        &manifest.events_table(),
        c.description.as_deref(),
    ));
    out.push('\n');
    out.push_str(&create_table(&manifest.quarantine_table(), None));
    out
}

/// `CREATE TABLE` for one table definition; column comments are the column docs.
fn create_table(table: &TableDef, comment: Option<&str>) -> String {
    let columns: Vec<String> = table
        .columns
        .iter()
        .map(|col| {
            let comment = col
                .doc
                .as_deref()
                .map(|d| format!(" COMMENT {}", quote(d)))
                .unwrap_or_default();
            format!("  `{}` {}{comment}", col.name, col.ty.hive())
        })
        .collect();
    let partitions: Vec<String> = table
        .partition
        .iter()
        .map(|p| match p.transform {
            Transform::Identity => format!("`{}`", p.source),
            Transform::Year => format!("year(`{}`)", p.source),
            Transform::Month => format!("month(`{}`)", p.source),
            Transform::Day => format!("day(`{}`)", p.source),
            Transform::Hour => format!("hour(`{}`)", p.source),
            Transform::Bucket(n) => format!("bucket({n}, `{}`)", p.source),
            Transform::Truncate(w) => format!("truncate({w}, `{}`)", p.source),
        })
        .collect();
    let mut out = format!(
        "CREATE TABLE IF NOT EXISTS `{}`.`{}` (\n{}\n)\n",
        table.database,
        table.name,
        columns.join(",\n")
    );
    if let Some(d) = comment {
        out.push_str(&format!("COMMENT {}\n", quote(d)));
    }
    if !partitions.is_empty() {
        out.push_str(&format!("PARTITIONED BY ({})\n", partitions.join(", ")));
    }
    out.push_str(&format!(
        "LOCATION '${{warehouse}}/{}.db/{}'\n",
        table.database, table.name
    ));
    out.push_str("TBLPROPERTIES (\n  'table_type'='ICEBERG',\n  'format'='parquet',\n  'write_compression'='zstd'\n);\n");
    out
}

#[cfg(test)]
mod tests {
    /// Hive's (and Spark's) `unescapeSQLString`, for the escapes `quote` writes.
    fn unquote(literal: &str) -> String {
        let body = &literal[1..literal.len() - 1];
        let mut out = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c == '\'' {
                panic!("an unescaped quote ends the literal: {literal}");
            }
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(e @ ('\\' | '\'' | '{')) => out.push(e),
                other => panic!("unexpected escape {other:?} in {literal}"),
            }
        }
        out
    }

    #[test]
    fn ddl_literals_read_back_as_the_text() {
        for text in [
            "The client's local time",
            "ends with a backslash \\",
            "\\' and '' and \\\\",
            "two\nlines\r\n\ttab, \u{2028} \u{85} \0 ; -- /* */ ${warehouse} $${x}} 🐢 \"x\"",
        ] {
            let literal = super::quote(text);
            assert_eq!(unquote(&literal), text, "{literal}");
            assert!(!literal.contains('\n'));
        }
        assert_eq!(super::quote("it's"), "'it\\'s'");
        assert!(!super::quote("a ${x} $${y}").contains("${"));
    }
}
