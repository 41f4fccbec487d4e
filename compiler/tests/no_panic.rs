//! The front end never panics, whatever the input: random text and mutated real contracts.
//! A panic fails the property; the diagnostics themselves are not judged here.

use std::sync::Arc;

use contractc::driver::check_sources;
use contractc::source::SourceFile;
use proptest::prelude::*;

fn samples() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    [
        "contracts/game_events.yaml",
        "contracts/match_events.yaml",
        "tests/fixtures/all_types/contract.yaml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(root.join(p)).expect("sample readable"))
    .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteRange { at: usize, len: usize },
    Insert { at: usize, text: String },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    ReplaceToken { line: usize, token: String },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        Just(String::new()),
        Just("-1".to_string()),
        Just("99999999999999999999".to_string()),
        Just("[]".to_string()),
        Just("{}".to_string()),
        Just("~".to_string()),
        Just("!tag x".to_string()),
        Just("&a".to_string()),
        Just("*a".to_string()),
        Just("\"".to_string()),
        Just("decimal(0,5)".to_string()),
        Just("%Y%".to_string()),
        Just("[0-9".to_string()),
        Just("🐢".to_string()),
        Just("\t".to_string()),
        "[a-z_]{1,8}",
        any::<String>(),
    ];
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::DeleteRange { at, len }),
        (any::<usize>(), any::<String>()).prop_map(|(at, text)| Mutation::Insert { at, text }),
        any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        (any::<usize>(), token).prop_map(|(line, token)| Mutation::ReplaceToken { line, token }),
    ]
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, m: &Mutation) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    match m {
        Mutation::DeleteRange { at, len } => {
            let start = floor_char_boundary(text, at % (text.len() + 1));
            let end = floor_char_boundary(text, start + len);
            format!("{}{}", &text[..start], &text[end..])
        }
        Mutation::Insert { at, text: new } => {
            let at = floor_char_boundary(text, at % (text.len() + 1));
            format!("{}{new}{}", &text[..at], &text[at..])
        }
        Mutation::DuplicateLine { line } => {
            let i = line % lines.len();
            lines.insert(i, lines[i].clone());
            lines.join("\n")
        }
        Mutation::SwapLines { a, b } => {
            let n = lines.len();
            lines.swap(a % n, b % n);
            lines.join("\n")
        }
        Mutation::ReplaceToken { line, token } => {
            let i = line % lines.len();
            if let Some((key, _)) = lines[i].split_once(": ") {
                lines[i] = format!("{key}: {token}");
            } else {
                lines[i] = format!("{}{token}", lines[i]);
            }
            lines.join("\n")
        }
    }
}

fn check_does_not_panic(text: String) {
    let file: Arc<SourceFile> = SourceFile::new("fuzz.yaml", text);
    let outcome = check_sources(&[file]);
    for d in &outcome.diagnostics {
        // Rendering must not panic either (spans are clamped to the text).
        let _ = d.render(false);
        let _ = d.to_json();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_text_never_panics(text in any::<String>()) {
        check_does_not_panic(text);
    }

    #[test]
    fn random_yaml_shapes_never_panic(text in "([a-z_]{1,6}: ([-0-9.a-z\\[\\]{}\"'~&*!]{0,6})?\n( {2,4}- ?)?){0,12}") {
        check_does_not_panic(text);
    }

    #[test]
    fn mutated_contracts_never_panic(which in 0usize..3, mutations in proptest::collection::vec(mutation(), 1..6)) {
        let mut text = samples()[which].clone();
        for m in &mutations {
            text = apply(&text, m);
        }
        check_does_not_panic(text);
    }
}
