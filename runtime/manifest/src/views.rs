//! Ready queries (#24): the views over a contract's two tables, as data. `contractc build`
//! writes them to `<contract>/athena/views.sql` and `deploy` creates them in Athena from here,
//! so neither re-parses SQL.
//!
//! Each view's SQL is the subset Athena (Trino) and Spark SQL share, so one text runs on both
//! (`tests/athena_views.py` runs it under Spark): `CAST(.. AS DATE)`, `COUNT`, `SUM`, `CASE`,
//! `COALESCE`, `FULL OUTER JOIN`, `row_number() OVER`. Names are safe identifiers and stay
//! unquoted, except the few that are reserved words in either engine: those are double-quoted,
//! Athena's quoting (Spark takes them in backticks). String literals avoid both engines'
//! different escapes: a quote or backslash in a value is spelled with `chr()`.

use crate::Manifest;
use crate::schema::{EnrichmentSource, Pii};
use crate::table::Column;

/// One view: a name unique in the contract's database, what it shows, and its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// A lowercase safe identifier, e.g. `events_table_daily_quality`.
    pub name: String,
    /// One sentence (no line break): what a row is.
    pub description: String,
    /// The `SELECT` (no trailing `;`), with the tables named `database.table`.
    pub sql: String,
}

impl View {
    /// `CREATE OR REPLACE VIEW database.name AS SELECT ...` (no trailing `;`).
    pub fn create_statement(&self, database: &str) -> String {
        format!(
            "CREATE OR REPLACE VIEW {}.{} AS\n{}",
            ident(database),
            ident(&self.name),
            self.sql
        )
    }
}

/// Words either engine reserves in queries: Trino's reserved keywords, and the join words Spark
/// keeps out of identifiers even outside ANSI mode.
const RESERVED: &[&str] = &[
    "alter",
    "and",
    "anti",
    "as",
    "between",
    "by",
    "case",
    "cast",
    "constraint",
    "create",
    "cross",
    "cube",
    "current_catalog",
    "current_date",
    "current_path",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "deallocate",
    "delete",
    "describe",
    "distinct",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "execute",
    "exists",
    "extract",
    "false",
    "first",
    "for",
    "from",
    "full",
    "group",
    "grouping",
    "having",
    "in",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "json_array",
    "json_exists",
    "json_object",
    "json_query",
    "json_table",
    "json_value",
    "last",
    "lateral",
    "left",
    "like",
    "listagg",
    "localtime",
    "localtimestamp",
    "minus",
    "natural",
    "normalize",
    "not",
    "null",
    "of",
    "on",
    "or",
    "order",
    "outer",
    "prepare",
    "recursive",
    "right",
    "rollup",
    "select",
    "semi",
    "setminus",
    "skip",
    "table",
    "then",
    "trim",
    "true",
    "uescape",
    "union",
    "unnest",
    "using",
    "values",
    "when",
    "where",
    "with",
];

/// A safe identifier as both engines read it: double-quoted only when reserved.
pub fn ident(name: &str) -> String {
    if RESERVED.contains(&name) {
        format!("\"{name}\"")
    } else {
        name.to_string()
    }
}

/// A string literal both engines read alike: Trino doubles a quote and takes a backslash as
/// is, Spark escapes both with a backslash, so those two characters are `chr()` calls; and so
/// is a `{` after a `$`, since Spark substitutes `${name}` in a statement's text, literals
/// included.
pub fn string_literal(value: &str) -> String {
    let mut parts = Vec::new();
    let mut run = String::new();
    let mut after_dollar = false;
    for ch in value.chars() {
        let substituted = ch == '{' && after_dollar;
        after_dollar = ch == '$';
        if ch == '\'' || ch == '\\' || substituted {
            if !run.is_empty() {
                parts.push(format!("'{}'", std::mem::take(&mut run)));
            }
            parts.push(format!("chr({})", u32::from(ch)));
        } else {
            run.push(ch);
        }
    }
    if !run.is_empty() || parts.is_empty() {
        parts.push(format!("'{run}'"));
    }
    parts.join(" || ")
}

/// `NewGame` → `new_game`, `HTTPError` → `http_error`, `Level2Done` → `level2_done`.
fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::new();
    for (i, &ch) in chars.iter().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            let before = chars[i - 1];
            let after_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if before.is_ascii_lowercase()
                || before.is_ascii_digit()
                || (before.is_ascii_uppercase() && after_lower)
            {
                out.push('_');
            }
        }
        if ch.is_ascii_alphanumeric() {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

impl Manifest {
    /// The contract's ready queries: one view per variant with its own columns, the daily
    /// volume and bad share (when the events table has a time to count days by), and the
    /// latest row per key of an upsert table (when it has an order to pick the latest by).
    pub fn views(&self) -> Vec<View> {
        let table = &self.table.name;
        let mut taken = vec![table.clone(), self.quarantine_table_name()];
        let mut fixed = Vec::new();
        if let Some(view) = self.daily_quality_view() {
            fixed.push(view);
        }
        if let Some(view) = self.latest_view() {
            fixed.push(view);
        }
        taken.extend(fixed.iter().map(|v| v.name.clone()));
        let mut views = Vec::new();
        for (value, base) in self.variant_names() {
            // A variant named like a table or another view (`Quarantine`, `Latest`) gets a
            // suffix: every name in the database stays one object's.
            let mut name = format!("{table}_{base}");
            while taken.contains(&name) {
                name.push_str("_variant");
            }
            taken.push(name.clone());
            views.push(self.variant_view(&value, name));
        }
        views.extend(fixed);
        views
    }

    /// (discriminator value, snake-case name) of each variant, in contract order.
    fn variant_names(&self) -> Vec<(String, String)> {
        let Some(variants) = &self.variants else {
            return Vec::new();
        };
        variants
            .cases
            .iter()
            .map(|case| {
                let name = snake_case(&case.ident);
                let name = if name.is_empty() {
                    "variant".to_string()
                } else {
                    name
                };
                (case.value.clone(), name)
            })
            .collect()
    }

    /// `database.table` as the views' queries name it.
    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", ident(&self.table.database), ident(table))
    }

    /// The events table's columns a view shows: all but dropped columns (always null) and,
    /// for a variant's view (`variant`: its discriminator value), other variants' payload.
    fn view_columns(&self, variant: Option<&str>) -> Vec<Column> {
        let cases = || self.variants.iter().flat_map(|v| v.cases.iter());
        let shown = |name: &str| {
            let Some(value) = variant else {
                return true;
            };
            let envelope = self.fields.iter().any(|f| f.name == name);
            let in_case = |value_of: &str| {
                cases()
                    .filter(|c| c.value == value_of)
                    .any(|c| c.fields.iter().any(|f| f.name == name))
            };
            let payload = cases().any(|c| c.fields.iter().any(|f| f.name == name));
            envelope || !payload || in_case(value)
        };
        self.events_table()
            .columns
            .into_iter()
            .filter(|c| shown(&c.name) && !self.dropped(&c.name))
            .collect()
    }

    /// Whether a column is judged but never stored (`pii: drop`).
    fn dropped(&self, column: &str) -> bool {
        let enrichment = self
            .enrichments
            .iter()
            .any(|e| e.name == column && e.pii == Pii::Drop);
        enrichment || self.payload_pii(column) == Pii::Drop
    }

    fn variant_view(&self, value: &str, name: String) -> View {
        let discriminator = self
            .variants
            .as_ref()
            .map_or("", |v| v.discriminator.as_str());
        let columns: Vec<String> = self
            .view_columns(Some(value))
            .iter()
            .map(|c| format!("  {}", ident(&c.name)))
            .collect();
        let sql = format!(
            "SELECT\n{}\nFROM {}\nWHERE {} = {}",
            columns.join(",\n"),
            self.qualified(&self.table.name),
            ident(discriminator),
            string_literal(value)
        );
        View {
            description: format!(
                "The events of {} whose `{discriminator}` is {value:?}, with their own \
                 columns: the envelope, the variant's payload and the enrichments.",
                self.table.name
            )
            .replace(['\n', '\r'], " "),
            name,
            sql,
        }
    }

    /// The column days are counted by: the ingest time when the contract records it (when the
    /// event arrived, as the quarantine table's `received_at`), else the first required
    /// temporal envelope field (when it happened).
    fn day_column(&self) -> Option<&str> {
        let ingest = self
            .enrichments
            .iter()
            .find(|e| e.source == EnrichmentSource::IngestTime)
            .map(|e| e.name.as_str());
        let temporal = || {
            self.fields
                .iter()
                .find(|f| f.required && f.ty.is_temporal())
                .map(|f| f.name.as_str())
        };
        ingest.or_else(temporal)
    }

    fn daily_quality_view(&self) -> Option<View> {
        let day = ident(self.day_column()?);
        let name = format!("{}_daily_quality", self.table.name);
        let events = self.qualified(&self.table.name);
        let quarantine = self.qualified(&self.quarantine_table_name());
        let bad = "COALESCE(b.quarantined, 0) + COALESCE(b.rejected, 0)";
        let sql = format!(
            "WITH accepted AS (\n  SELECT CAST({day} AS DATE) AS day, COUNT(*) AS events\n  \
             FROM {events}\n  GROUP BY CAST({day} AS DATE)\n),\nbad AS (\n  \
             SELECT CAST(received_at AS DATE) AS day,\n    \
             SUM(CASE WHEN verdict = 'quarantine' THEN 1 ELSE 0 END) AS quarantined,\n    \
             SUM(CASE WHEN verdict = 'reject' THEN 1 ELSE 0 END) AS rejected\n  \
             FROM {quarantine}\n  GROUP BY CAST(received_at AS DATE)\n)\nSELECT\n  \
             COALESCE(a.day, b.day) AS day,\n  COALESCE(a.events, 0) AS accepted,\n  \
             COALESCE(b.quarantined, 0) AS quarantined,\n  \
             COALESCE(b.rejected, 0) AS rejected,\n  \
             CAST({bad} AS DOUBLE) / (COALESCE(a.events, 0) + {bad}) AS bad_share\n\
             FROM accepted a\nFULL OUTER JOIN bad b ON a.day = b.day"
        );
        let kept = if self.upsert().is_some() {
            " (an upsert table keeps one row per key: accepted counts the rows kept)"
        } else {
            ""
        };
        Some(View {
            name,
            description: format!(
                "Per day (UTC, by {}): events accepted into {}{kept}, quarantined and refused \
                 ones from {}, and the bad share (quarantined and refused over all judged).",
                self.day_column()?,
                self.table.name,
                self.quarantine_table_name()
            ),
            sql,
        })
    }

    /// The order the latest version of a key is picked by: `latest_by`, then the ingest time
    /// (the last received wins); None when the table records neither.
    fn latest_order(&self) -> Option<Vec<String>> {
        let upsert = self.upsert()?;
        let ingest = self
            .enrichments
            .iter()
            .find(|e| e.source == EnrichmentSource::IngestTime)
            .map(|e| e.name.as_str());
        let order: Vec<String> = upsert
            .latest_by
            .into_iter()
            .chain(ingest.filter(|i| Some(*i) != upsert.latest_by))
            .map(|c| format!("{} DESC NULLS LAST", ident(c)))
            .collect();
        (!order.is_empty()).then_some(order)
    }

    fn latest_view(&self) -> Option<View> {
        let upsert = self.upsert()?;
        let order = self.latest_order()?;
        let columns = self.view_columns(None);
        let mut rank = "contractc_rank".to_string();
        while columns.iter().any(|c| c.name == rank) {
            rank.push('_');
        }
        let keys: Vec<String> = upsert.key.iter().map(|k| ident(k)).collect();
        let list: Vec<String> = columns
            .iter()
            .map(|c| format!("  {}", ident(&c.name)))
            .collect();
        let sql = format!(
            "SELECT\n{}\nFROM (\n  SELECT *, row_number() OVER (PARTITION BY {} ORDER BY {}) AS {rank}\n  \
             FROM {}\n) ranked\nWHERE {rank} = 1",
            list.join(",\n"),
            keys.join(", "),
            order.join(", "),
            self.qualified(&self.table.name)
        );
        Some(View {
            name: format!("{}_latest", self.table.name),
            description: format!(
                "The latest row per {} of {} (by {}).",
                upsert.key.join(", "),
                self.table.name,
                upsert.latest_by.unwrap_or("ingest time")
            ),
            sql,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{
        Auth, Enrichment, Field, Ingest, Issuer, Table, Type, UnknownFields, Variant, Variants,
        WriteMode,
    };
    use crate::{Manifest, Source};

    fn field(name: &str, id: u32, ty: Type, required: bool) -> Field {
        Field {
            name: name.into(),
            id,
            ty,
            required,
            description: None,
            pii: Pii::No,
            rules: Vec::new(),
        }
    }

    fn case(value: &str, ident: &str, fields: Vec<Field>) -> Variant {
        Variant {
            value: value.into(),
            ident: ident.into(),
            description: None,
            fields,
            require: Vec::new(),
            rules: Vec::new(),
        }
    }

    fn enrichment(name: &str, id: u32, source: EnrichmentSource) -> Enrichment {
        Enrichment {
            name: name.into(),
            id,
            source,
            description: None,
            pii: Pii::No,
        }
    }

    /// A contract with an envelope (one column named by a reserved word), three variants
    /// (one named like the quarantine table, one's payload dropped) and an ingest time.
    fn manifest(write: WriteMode) -> Manifest {
        let mut secret = field("secret", 22, Type::String, false);
        secret.pii = Pii::Drop;
        Manifest {
            name: "shop".into(),
            version: "1.0.0".into(),
            owner: "o".into(),
            description: None,
            source: Source {
                path: "contracts/shop.yaml".into(),
                fingerprint: "f".into(),
            },
            fields: vec![
                field("event_id", 1, Type::String, true),
                field("kind", 2, Type::String, true),
                field("order", 3, Type::Long, false),
            ],
            variants: Some(Variants {
                discriminator: "kind".into(),
                cases: vec![
                    case(
                        "New Game",
                        "NewGame",
                        vec![field("map_name", 20, Type::String, true)],
                    ),
                    case("Quarantine", "Quarantine", vec![secret]),
                    case(
                        "it's \\ done",
                        "ItSDone",
                        vec![field("score", 30, Type::Int, false)],
                    ),
                ],
            }),
            enrichments: vec![
                enrichment("player_id", 100, EnrichmentSource::JwtSub),
                enrichment("ingest_time", 101, EnrichmentSource::IngestTime),
            ],
            docs: String::new(),
            versions: None,
            subject: None,
            alerts: Vec::new(),
            table: Table {
                database: "games".into(),
                name: "events".into(),
                partition: Vec::new(),
                sort: Vec::new(),
                write,
                properties: Default::default(),
            },
            ingest: Ingest {
                route: "/prod/x".into(),
                batch_route: None,
                max_body_bytes: 1024,
                max_batch_events: 10,
                unknown_fields: UnknownFields::Reject,
                dedup: None,
                auth: Auth {
                    issuer: Issuer::Dev,
                    jwks_url: None,
                    audience: "a".into(),
                    scopes: vec!["guest".into()],
                },
            },
        }
    }

    fn upsert() -> WriteMode {
        WriteMode::Upsert {
            key: vec!["event_id".into()],
            latest_by: Some("order".into()),
        }
    }

    fn named<'v>(views: &'v [View], name: &str) -> &'v View {
        views
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no view {name} in {views:?}"))
    }

    #[test]
    fn variant_names_are_snake_case_identifiers() {
        assert_eq!(snake_case("NewGame"), "new_game");
        assert_eq!(snake_case("HTTPError"), "http_error");
        assert_eq!(snake_case("Level2Done"), "level2_done");
        assert_eq!(snake_case("Login"), "login");
    }

    #[test]
    fn literals_read_the_same_in_both_engines() {
        assert_eq!(string_literal("New Game"), "'New Game'");
        assert_eq!(string_literal(""), "''");
        assert_eq!(string_literal("it's"), "'it' || chr(39) || 's'");
        assert_eq!(string_literal("a\\"), "'a' || chr(92)");
        assert_eq!(string_literal("${x} $"), "'$' || chr(123) || 'x} $'");
        assert_eq!(ident("order"), "\"order\"");
        assert_eq!(ident("kind"), "kind");
    }

    #[test]
    fn one_view_per_variant_with_its_own_columns() {
        let views = manifest(WriteMode::Append).views();
        let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "events_new_game",
                // `events_quarantine` is the quarantine table.
                "events_quarantine_variant",
                "events_it_s_done",
                "events_daily_quality",
            ]
        );
        let new_game = &named(&views, "events_new_game").sql;
        assert_eq!(
            new_game,
            "SELECT\n  event_id,\n  kind,\n  \"order\",\n  map_name,\n  player_id,\n  \
             ingest_time\nFROM games.events\nWHERE kind = 'New Game'"
        );
        // The dropped column is always null: no view shows it.
        let dropped = &named(&views, "events_quarantine_variant").sql;
        assert!(!dropped.contains("secret") && !dropped.contains("map_name"));
        let quoted = &named(&views, "events_it_s_done").sql;
        assert!(quoted.ends_with("WHERE kind = 'it' || chr(39) || 's ' || chr(92) || ' done'"));
        assert!(quoted.contains("  score,\n") && !quoted.contains("map_name"));
    }

    #[test]
    fn daily_quality_counts_days_by_ingest_time_else_a_required_time_else_not_at_all() {
        let mut m = manifest(WriteMode::Append);
        let daily = named(&m.views(), "events_daily_quality").clone();
        assert!(
            daily
                .sql
                .contains("SELECT CAST(ingest_time AS DATE) AS day")
        );
        assert!(daily.sql.contains("FROM games.events_quarantine"));
        assert!(daily.sql.contains(
            "CAST(COALESCE(b.quarantined, 0) + COALESCE(b.rejected, 0) AS DOUBLE) / \
             (COALESCE(a.events, 0) + COALESCE(b.quarantined, 0) + COALESCE(b.rejected, 0)) AS bad_share"
        ));
        m.enrichments
            .retain(|e| e.source != EnrichmentSource::IngestTime);
        m.fields
            .push(field("happened_at", 4, Type::TimestampTz, true));
        let daily = named(&m.views(), "events_daily_quality").clone();
        assert!(daily.sql.contains("CAST(happened_at AS DATE)"));
        m.fields.pop();
        assert!(m.views().iter().all(|v| v.name != "events_daily_quality"));
    }

    #[test]
    fn upsert_tables_have_their_latest_row_per_key() {
        assert!(
            manifest(WriteMode::Append)
                .views()
                .iter()
                .all(|v| v.name != "events_latest")
        );
        let views = manifest(upsert()).views();
        let latest = named(&views, "events_latest");
        assert!(latest.sql.contains(
            "row_number() OVER (PARTITION BY event_id ORDER BY \"order\" DESC NULLS LAST, \
             ingest_time DESC NULLS LAST) AS contractc_rank"
        ));
        assert!(latest.sql.ends_with(") ranked\nWHERE contractc_rank = 1"));
        // Every variant's payload, no dropped column, not the rank.
        assert!(latest.sql.starts_with(
            "SELECT\n  event_id,\n  kind,\n  \"order\",\n  map_name,\n  score,\n  player_id,\n  ingest_time\nFROM ("
        ));
        assert_eq!(
            latest.create_statement("analytics"),
            format!(
                "CREATE OR REPLACE VIEW analytics.events_latest AS\n{}",
                latest.sql
            )
        );
        // Without latest_by the last received wins; with no ingest time either, no view.
        let mut m = manifest(WriteMode::Upsert {
            key: vec!["event_id".into()],
            latest_by: None,
        });
        assert!(
            named(&m.views(), "events_latest")
                .sql
                .contains("ORDER BY ingest_time DESC NULLS LAST)")
        );
        m.enrichments.clear();
        assert!(m.views().iter().all(|v| v.name != "events_latest"));
    }

    #[test]
    fn descriptions_are_one_line() {
        for view in manifest(upsert()).views() {
            assert!(!view.description.contains('\n'), "{view:?}");
            assert!(
                view.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
        }
    }
}
