//! The change matrix: each case edits a base contract and names the classes `contractc diff`
//! must give. Versions are bumped to a major version in every case so only the change itself
//! is judged; the version checks have their own tests below.

use std::collections::BTreeSet;

use contractc::diff::{Class, diff};
use contractc::driver::check_sources;
use contractc::source::SourceFile;

const BASE: &str = r#"contract: shop
version: 1.0.0
owner: tests
description: A base contract for the change matrix.
fields:
  - name: event_id
    id: 1
    type: string
    required: true
    rules:
      - pattern: "[a-z0-9]{1,16}"
  - name: kind
    id: 2
    type: string
    required: true
  - name: amount
    id: 3
    type: int
    rules:
      - min: 0
      - max: 1000
  - name: price
    id: 4
    type: float
  - name: cost
    id: 5
    type: decimal(10,2)
  - name: note
    id: 6
    type: string
    rules:
      - max_length: 100
      - min_length: 1
  - name: channel
    id: 7
    type: string
    rules:
      - one_of: [web, app]
  - name: at
    id: 8
    type: timestamp
    format: "%Y-%m-%d %H:%M:%S"
    required: true
    rules:
      - not_after: { skew: 1h }
      - not_before: { offset: -7d, skew: 1h }
  - name: tags
    id: 9
    type: list
    items: { id: 10, type: string }
reserved:
  ids: [50]
variants:
  discriminator: kind
  cases:
    buy:
      fields:
        - name: sku
          id: 20
          type: string
          required: true
    refund:
table:
  database: shop
  name: events
  partition_by:
    - field: kind
  write:
    mode: append
ingest:
  route: /shop
  max_body_bytes: 4096
  auth:
    issuer: dev
    audience: gamebackend
    scopes: [guest, authenticated]
enrich:
  - name: player_id
    id: 100
    from: jwt.sub
"#;

fn set(text: &str) -> contractc::Valid<contractc::ContractSet> {
    let outcome = check_sources(&[SourceFile::new("shop.yaml", text)]);
    let rendered: Vec<String> = outcome
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.render(false))
        .collect();
    outcome
        .contracts
        .unwrap_or_else(|| panic!("does not check:\n{}\n{text}", rendered.join("\n")))
}

fn edit(pairs: &[(&str, &str)]) -> String {
    let mut text = BASE.replace("version: 1.0.0", "version: 2.0.0");
    for (from, to) in pairs {
        assert!(text.contains(from), "base lacks {from:?}");
        text = text.replacen(from, to, 1);
    }
    text
}

fn classes(new: &str) -> BTreeSet<Class> {
    let report = diff(&set(BASE), &set(new));
    report
        .changes
        .iter()
        .flat_map(|c| c.classes.iter().copied())
        .collect()
}

/// (name, text edits to the base, expected classes).
type Case = (&'static str, Vec<(&'static str, &'static str)>, Vec<Class>);

use Class::{BreaksProducers as P, BreaksTable as T, NeedsMigration as M, Safe as S};

#[test]
fn change_matrix() {
    let cases: Vec<Case> = vec![
        (
            "add optional field",
            vec![(
                "  - name: tags\n",
                "  - name: extra\n    id: 11\n    type: string\n  - name: tags\n",
            )],
            vec![S],
        ),
        (
            "add required field",
            vec![(
                "  - name: tags\n",
                "  - name: extra\n    id: 11\n    type: string\n    required: true\n  - name: tags\n",
            )],
            vec![P, M],
        ),
        (
            "add optional nested list",
            vec![(
                "  - name: tags\n",
                "  - name: scores\n    id: 12\n    type: list\n    items: { id: 13, type: long }\n  - name: tags\n",
            )],
            vec![S],
        ),
        (
            "remove field keeping its id reserved",
            vec![
                ("  - name: price\n    id: 4\n    type: float\n", ""),
                ("ids: [50]", "ids: [4, 50]"),
            ],
            vec![P],
        ),
        (
            "remove field without reserving its id",
            vec![("  - name: price\n    id: 4\n    type: float\n", "")],
            vec![P, T],
        ),
        (
            "reuse a reserved id",
            vec![
                (
                    "  - name: tags\n",
                    "  - name: extra\n    id: 50\n    type: string\n  - name: tags\n",
                ),
                ("ids: [50]", "ids: []"),
            ],
            vec![T],
        ),
        (
            "rename a field",
            vec![("name: price", "name: unit_price")],
            vec![P, T],
        ),
        (
            "int to long",
            vec![("    id: 3\n    type: int", "    id: 3\n    type: long")],
            vec![M],
        ),
        (
            "float to double",
            vec![("    id: 4\n    type: float", "    id: 4\n    type: double")],
            vec![M],
        ),
        (
            "widen decimal precision",
            vec![("decimal(10,2)", "decimal(12,2)")],
            vec![M],
        ),
        (
            "change decimal scale",
            vec![("decimal(10,2)", "decimal(10,3)")],
            vec![P, T],
        ),
        (
            "int to string",
            vec![(
                "    id: 3\n    type: int\n    rules:\n      - min: 0\n      - max: 1000",
                "    id: 3\n    type: string",
            )],
            vec![P, T],
        ),
        (
            "list to string",
            vec![(
                "    type: list\n    items: { id: 10, type: string }\n",
                "    type: string\n",
            )],
            vec![P, T],
        ),
        (
            "change timestamp format",
            vec![("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")],
            vec![P],
        ),
        (
            "optional to required",
            vec![(
                "    id: 4\n    type: float",
                "    id: 4\n    type: float\n    required: true",
            )],
            vec![P, M],
        ),
        (
            "required to optional",
            vec![(
                "    id: 1\n    type: string\n    required: true",
                "    id: 1\n    type: string",
            )],
            vec![S],
        ),
        (
            "lower a min",
            vec![("      - min: 0", "      - min: -10")],
            vec![S],
        ),
        (
            "raise a min",
            vec![("      - min: 0", "      - min: 5")],
            vec![P, M],
        ),
        (
            "raise a max",
            vec![("      - max: 1000", "      - max: 5000")],
            vec![S],
        ),
        (
            "lower a max",
            vec![("      - max: 1000", "      - max: 10")],
            vec![P, M],
        ),
        (
            "longer max_length",
            vec![("max_length: 100", "max_length: 500")],
            vec![S],
        ),
        (
            "shorter max_length",
            vec![("max_length: 100", "max_length: 50")],
            vec![P, M],
        ),
        (
            "raise min_length",
            vec![("min_length: 1", "min_length: 3")],
            vec![P, M],
        ),
        (
            "bigger enum",
            vec![("[web, app]", "[web, app, console]")],
            vec![S],
        ),
        (
            "remove an enum value",
            vec![("[web, app]", "[web]")],
            vec![P, M],
        ),
        (
            "looser pattern (alternation)",
            vec![("[a-z0-9]{1,16}\"", "[a-z0-9]{1,16}|legacy-[0-9]+\"")],
            vec![S],
        ),
        (
            "different pattern, not provably looser",
            vec![("[a-z0-9]{1,16}\"", "[a-z0-9]{1,32}\"")],
            vec![P],
        ),
        (
            "add a rule",
            vec![(
                "    id: 4\n    type: float",
                "    id: 4\n    type: float\n    rules:\n      - min: 0",
            )],
            vec![P, M],
        ),
        (
            "add a rule with policy warn",
            vec![(
                "    id: 4\n    type: float",
                "    id: 4\n    type: float\n    rules:\n      - min: 0\n        policy: warn",
            )],
            vec![S],
        ),
        (
            "remove a rule",
            vec![("      - min_length: 1\n", "")],
            vec![S],
        ),
        (
            "policy reject to warn",
            vec![(
                "      - max: 1000",
                "      - max: 1000\n        policy: warn",
            )],
            vec![S],
        ),
        (
            "unknown fields quarantined instead of rejected",
            vec![(
                "  max_body_bytes: 4096\n",
                "  max_body_bytes: 4096\n  unknown_fields: quarantine\n",
            )],
            vec![S],
        ),
        (
            "wider time window",
            vec![(
                "      - not_after: { skew: 1h }",
                "      - not_after: { skew: 14h }",
            )],
            vec![S],
        ),
        (
            "narrower time window",
            vec![("offset: -7d, skew: 1h", "offset: -1d, skew: 1h")],
            vec![P, M],
        ),
        (
            "add a variant",
            vec![("    refund:\n", "    refund:\n    gift:\n")],
            vec![S],
        ),
        ("remove a variant", vec![("    refund:\n", "")], vec![P]),
        (
            "add a required variant field",
            vec![(
                "          required: true\n    refund:",
                "          required: true\n        - name: qty\n          id: 21\n          type: int\n          required: true\n    refund:",
            )],
            vec![P, M],
        ),
        (
            "variant requires an envelope field",
            vec![("    refund:\n", "    refund:\n      require: [note]\n")],
            vec![P, M],
        ),
        (
            "partition change",
            vec![(
                "    - field: kind\n",
                "    - field: kind\n    - field: at\n      transform: day\n",
            )],
            vec![T],
        ),
        (
            "sort order added",
            vec![(
                "  write:\n    mode: append",
                "  sort_by:\n    - field: at\n  write:\n    mode: append",
            )],
            vec![S],
        ),
        (
            "append to upsert",
            vec![("    mode: append", "    mode: upsert\n    key: [event_id]")],
            vec![T],
        ),
        (
            "table renamed",
            vec![("  name: events", "  name: events_v2")],
            vec![T],
        ),
        (
            "route changed",
            vec![("route: /shop", "route: /shop/v2")],
            vec![P],
        ),
        (
            "body limit lowered",
            vec![("max_body_bytes: 4096", "max_body_bytes: 1024")],
            vec![P],
        ),
        (
            "body limit raised",
            vec![("max_body_bytes: 4096", "max_body_bytes: 8192")],
            vec![S],
        ),
        (
            "scope removed",
            vec![("scopes: [guest, authenticated]", "scopes: [authenticated]")],
            vec![P],
        ),
        (
            "scope added",
            vec![(
                "scopes: [guest, authenticated]",
                "scopes: [guest, authenticated, admin]",
            )],
            vec![S],
        ),
        (
            "audience changed",
            vec![("audience: gamebackend", "audience: shop")],
            vec![P],
        ),
        (
            "unknown fields dropped instead of rejected",
            vec![(
                "  max_body_bytes: 4096\n",
                "  max_body_bytes: 4096\n  unknown_fields: drop\n",
            )],
            vec![S],
        ),
        (
            "enrichment added",
            vec![(
                "    from: jwt.sub\n",
                "    from: jwt.sub\n  - name: received\n    id: 101\n    from: ingest_time\n",
            )],
            vec![S],
        ),
        (
            "description changed",
            vec![(
                "A base contract for the change matrix.",
                "The base contract.",
            )],
            vec![S],
        ),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for (name, edits, expected) in &cases {
        let new = edit(edits);
        let got = classes(&new);
        let expected: BTreeSet<Class> = expected.iter().copied().collect();
        if got != expected {
            failures.push(format!("{name}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn breaking_changes_need_a_major_bump() {
    let breaking = BASE
        .replace("version: 1.0.0", "version: 1.1.0")
        .replace("route: /shop", "route: /shop/v2");
    let report = diff(&set(BASE), &set(&breaking));
    assert!(report.is_breaking());
    assert_eq!(
        report.version_errors.len(),
        1,
        "{:?}",
        report.version_errors
    );
    assert!(report.version_errors[0].contains("use 2.0.0"));

    let safe = BASE
        .replace("version: 1.0.0", "version: 1.1.0")
        .replace("max_body_bytes: 4096", "max_body_bytes: 8192");
    assert!(diff(&set(BASE), &set(&safe)).version_errors.is_empty());

    let unbumped = BASE.replace("max_body_bytes: 4096", "max_body_bytes: 8192");
    let report = diff(&set(BASE), &set(&unbumped));
    assert!(
        report.version_errors[0].contains("did not"),
        "{:?}",
        report.version_errors
    );

    let backwards = BASE.replace("version: 1.0.0", "version: 0.9.0");
    assert!(diff(&set(BASE), &set(&backwards)).version_errors[0].contains("backwards"));

    assert!(diff(&set(BASE), &set(BASE)).changes.is_empty());
}
