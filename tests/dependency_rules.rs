//! The crate graph's rules (ARCHITECTURE.md, "Crates"), checked on what cargo would link, so
//! they cannot drift back: `cargo tree` per binary, normal edges, proc-macros left out (they
//! run at build time and link nothing into the binary).

use std::process::Command;

/// The packages linked into `package` (its normal dependencies, transitively), by name.
fn linked(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["tree", "--locked", "--offline", "-p", package])
        .args([
            "-e",
            "normal,no-proc-macro",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

fn forbidden(linked: &[String], rule: impl Fn(&str) -> bool) -> Vec<&str> {
    linked
        .iter()
        .map(String::as_str)
        .filter(|name| rule(name))
        .collect()
}

/// Crates of the compiler's front end and code generation.
fn is_compiler_internal(name: &str) -> bool {
    matches!(
        name,
        "contractc"
            | "syn"
            | "tera"
            | "jsonschema"
            | "serde_yaml"
            | "saphyr-parser"
            | "databake"
            | "prettyplease"
            | "annotate-snippets"
    )
}

fn is_aws_sdk(name: &str) -> bool {
    name.starts_with("aws-") || name == "aws-lc-sys" || name == "aws-lc-rs"
}

#[test]
fn the_serving_binary_links_no_compiler_and_no_aws_sdk() {
    let linked = linked("contract-runtime");
    assert!(linked.iter().any(|n| n == "contract-serve"), "{linked:?}");
    assert_eq!(forbidden(&linked, is_compiler_internal), Vec::<&str>::new());
    assert_eq!(forbidden(&linked, is_aws_sdk), Vec::<&str>::new());
}

#[test]
fn deploying_links_no_compiler_and_no_serving_stack() {
    let linked = linked("contract-deploy");
    assert!(linked.iter().any(|n| n == "aws-sdk-glue"), "{linked:?}");
    assert_eq!(forbidden(&linked, is_compiler_internal), Vec::<&str>::new());
    let serving = |n: &str| matches!(n, "contract-serve" | "iceberg" | "axum" | "parquet");
    assert_eq!(forbidden(&linked, serving), Vec::<&str>::new());
}

#[test]
fn the_compiler_links_no_runtime_but_the_shared_model() {
    let linked = linked("contractc");
    let runtime = |n: &str| {
        n.starts_with("contract-") && !matches!(n, "contract-manifest" | "contract-corpus")
            || is_aws_sdk(n)
            || matches!(n, "iceberg" | "axum" | "tokio" | "arrow-array")
    };
    assert_eq!(forbidden(&linked, runtime), Vec::<&str>::new());
}

#[test]
fn the_shared_model_stays_small() {
    // Everything links the manifest: it must not pull in a heavy crate.
    let linked = linked("contract-manifest");
    let allowed = |n: &str| {
        matches!(
            n,
            "contract-manifest"
                | "serde_json"
                | "serde"
                | "serde_core"
                | "sha2"
                | "thiserror"
                | "itoa"
                | "memchr"
                | "ryu"
                | "indexmap"
                | "hashbrown"
                | "equivalent"
                | "digest"
                | "block-buffer"
                | "crypto-common"
                | "generic-array"
                | "typenum"
                | "version_check"
                | "cpufeatures"
                | "cfg-if"
                | "libc"
                | "zmij"
                | "foldhash"
        )
    };
    assert_eq!(forbidden(&linked, |n| !allowed(n)), Vec::<&str>::new());
}

/// The shared judge is linkable by any door (serve, an AWS Lambda): no HTTP server, no lake,
/// no AWS SDK, no compiler.
#[test]
fn the_judge_links_no_server_no_lake_and_no_aws_sdk() {
    let linked = linked("contract-judge");
    assert!(linked.iter().any(|n| n == "contract-support"), "{linked:?}");
    let heavy = |n: &str| {
        matches!(
            n,
            "contract-serve" | "axum" | "hyper" | "tokio" | "iceberg" | "parquet" | "sqlx"
        )
    };
    assert_eq!(forbidden(&linked, heavy), Vec::<&str>::new());
    assert_eq!(forbidden(&linked, is_aws_sdk), Vec::<&str>::new());
    assert_eq!(forbidden(&linked, is_compiler_internal), Vec::<&str>::new());
}

/// The AWS edge function is small to cold-start: the shared judge and the one AWS SDK it
/// calls (Kinesis), no serving stack, no lake, no compiler, no other AWS service's SDK.
#[test]
fn the_edge_function_links_the_judge_and_kinesis_only() {
    let linked = linked("contract-edge");
    for needed in ["contract-judge", "aws-sdk-kinesis", "lambda_runtime"] {
        assert!(linked.iter().any(|n| n == needed), "{needed}: {linked:?}");
    }
    // arrow-array does come, with the generated validators' row builders (serve's buffers):
    // a feature of contract-validators without them would take it out of the function.
    let serving = |n: &str| {
        matches!(
            n,
            "contract-serve" | "axum" | "iceberg" | "parquet" | "sqlx"
        )
    };
    assert_eq!(forbidden(&linked, serving), Vec::<&str>::new());
    let other_sdk = |n: &str| n.starts_with("aws-sdk-") && n != "aws-sdk-kinesis";
    assert_eq!(forbidden(&linked, other_sdk), Vec::<&str>::new());
    assert_eq!(forbidden(&linked, is_compiler_internal), Vec::<&str>::new());
}
