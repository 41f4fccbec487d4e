//! `contract-deploy deploy` against moto server (started here, on 127.0.0.1): the real AWS SDK
//! calls, a first apply that creates everything, read-back equal to the generated artefacts,
//! an empty plan afterwards, drift and changed contracts planned exactly, and clear errors for
//! calls moto does not implement.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use contract_deploy::{Clients, DeployConfig};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Moto {
    child: Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// The child is reaped by `Moto`'s Drop (kill + wait), which clippy cannot see through.
#[allow(clippy::zombie_processes)]
fn start_moto() -> Moto {
    let python = std::env::var("CONTRACTC_PYTHON")
        .expect("CONTRACTC_PYTHON (a venv with moto[server]): run tests/run.sh");
    let server = Path::new(&python).with_file_name("moto_server");
    assert!(
        server.exists(),
        "{} is missing: pip install 'moto[server]' into the test venv",
        server.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let child = Command::new(&server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Moto {
                child,
                url: format!("http://127.0.0.1:{port}"),
            };
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("moto_server did not listen within 30 s");
}

/// The identity provider the deployed JWT authorizer trusts (the sample contracts use `dev`).
const ISSUER: &str = "https://id.example.com";

fn runtime(moto: &Moto, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_contract-deploy"))
        .current_dir(repo())
        .args(args)
        .args(["--endpoint-url", &moto.url, "--issuer-url", ISSUER])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("contract-runtime runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(moto: &Moto) -> DeployConfig {
    DeployConfig {
        prefix: "contractc".into(),
        region: "us-east-1".into(),
        endpoint_url: Some(moto.url.clone()),
        profile: None,
        bucket: None,
        glue_role_arn: None,
        api_role_arn: None,
        account_id: "123456789012".into(),
        generated: repo().join("generated"),
        static_credentials: Some(("testing".into(), "testing".into())),
        dev_issuer: Some(ISSUER.into()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_creates_reads_back_stays_idempotent_and_plans_changes_exactly() {
    let moto = start_moto();

    let plan = runtime(&moto, &["deploy", "--plan", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", stdout(&plan));
    for resource in [
        "api gateway http api contractc-game_events-edge",
        "s3 bucket contractc-artifacts",
        "kinesis stream contractc-game_events",
        "glue table analytics_events_db.events_table",
        "glue job contractc-match_events",
        "api gateway rest api contractc-game_events",
    ] {
        assert!(
            stdout(&plan).contains(&format!("+ create {resource}")),
            "{resource} missing from:\n{}",
            stdout(&plan)
        );
    }

    let apply = runtime(&moto, &["deploy", "--apply", "--start-job"]);
    assert_eq!(
        apply.status.code(),
        Some(0),
        "{}{}",
        stdout(&apply),
        String::from_utf8_lossy(&apply.stderr)
    );
    assert!(
        stdout(&apply).contains("started glue job run"),
        "{}",
        stdout(&apply)
    );

    let again = runtime(&moto, &["deploy", "--plan", "--detailed-exitcode"]);
    assert_eq!(
        again.status.code(),
        Some(0),
        "the plan after an apply is empty:\n{}",
        stdout(&again)
    );
    assert!(stdout(&again).contains("0 change(s) to apply"));
    let second_apply = runtime(&moto, &["deploy", "--apply"]);
    assert!(
        stdout(&second_apply).contains("0 change(s) applied"),
        "{}",
        stdout(&second_apply)
    );

    // Read back, byte for byte.
    let clients = Clients::new(&config(&moto)).await;
    for contract in ["game_events", "match_events"] {
        let script = clients
            .s3
            .get_object()
            .bucket("contractc-artifacts")
            .key(format!("contractc/{contract}/streaming_job.py"))
            .send()
            .await
            .expect("script uploaded")
            .body
            .collect()
            .await
            .expect("body")
            .into_bytes();
        let generated =
            std::fs::read(repo().join(format!("generated/{contract}/glue/streaming_job.py")))
                .expect("generated script");
        assert_eq!(script.as_ref(), generated.as_slice(), "{contract} script");
    }
    let apis = clients
        .apigateway
        .get_rest_apis()
        .send()
        .await
        .expect("apis");
    let api = apis
        .items()
        .iter()
        .find(|a| a.name() == Some("contractc-game_events"))
        .and_then(|a| a.id())
        .expect("api")
        .to_string();
    let model = clients
        .apigateway
        .get_model()
        .rest_api_id(&api)
        .model_name("GameEventsEvent")
        .send()
        .await
        .expect("model");
    let generated_model: Value = serde_json::from_slice(
        &std::fs::read(repo().join("generated/game_events/apigateway/request-model.json"))
            .expect("model"),
    )
    .expect("json");
    assert_eq!(
        serde_json::from_str::<Value>(model.schema().expect("schema")).expect("json"),
        generated_model
    );
    let table = clients
        .glue
        .get_table()
        .database_name("analytics_events_db")
        .name("events_table")
        .send()
        .await
        .expect("table");
    let table = table.table().expect("table");
    let columns: Vec<&str> = table
        .storage_descriptor()
        .map(|s| s.columns().iter().map(|c| c.name()).collect())
        .unwrap_or_default();
    assert_eq!(
        columns,
        [
            "event_id",
            "event_type",
            "updated_at",
            "event_data",
            "player_id",
            "ingest_time",
            "contract_version",
            "request_id"
        ]
    );
    assert_eq!(
        table
            .parameters()
            .and_then(|p| p.get("table_type"))
            .map(String::as_str),
        Some("ICEBERG")
    );

    // The front door: an HTTP API whose JWT authorizer trusts the issuer, with the contract's
    // scopes on the route, forwarding to the REST API.
    let edges = clients
        .apigatewayv2
        .get_apis()
        .send()
        .await
        .expect("http apis");
    let edge = edges
        .items()
        .iter()
        .find(|a| a.name() == Some("contractc-game_events-edge"))
        .and_then(|a| a.api_id())
        .expect("edge api")
        .to_string();
    let routes = clients
        .apigatewayv2
        .get_routes()
        .api_id(&edge)
        .send()
        .await
        .expect("routes");
    let route = routes
        .items()
        .iter()
        .find(|r| r.route_key() == Some("POST /prod/put-record"))
        .expect("route");
    assert_eq!(route.authorization_type().map(|t| t.as_str()), Some("JWT"));
    assert_eq!(
        route.authorization_scopes(),
        ["guest".to_string(), "authenticated".to_string()]
    );
    let authorizer = clients
        .apigatewayv2
        .get_authorizer()
        .api_id(&edge)
        .authorizer_id(route.authorizer_id().expect("authorizer"))
        .send()
        .await
        .expect("authorizer");
    let jwt = authorizer.jwt_configuration().expect("jwt configuration");
    assert_eq!(
        (jwt.issuer(), jwt.audience()),
        (Some(ISSUER), ["gamebackend".to_string()].as_slice())
    );

    // Drift: a resource changed outside shows in the plan, and apply repairs it.
    clients
        .s3
        .put_object()
        .bucket("contractc-artifacts")
        .key("contractc/game_events/streaming_job.py")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"print('edited by hand')",
        ))
        .send()
        .await
        .expect("tamper");
    let drift = runtime(&moto, &["deploy", "--plan", "--detailed-exitcode"]);
    assert_eq!(drift.status.code(), Some(2));
    assert_eq!(
        stdout(&drift)
            .lines()
            .filter(|l| l.starts_with('~') || l.starts_with('+'))
            .count(),
        1,
        "{}",
        stdout(&drift)
    );
    assert!(stdout(&drift).contains(
        "~ update s3 object s3://contractc-artifacts/contractc/game_events/streaming_job.py"
    ));
    runtime(&moto, &["deploy", "--apply"]);

    // A changed contract (new script and model): exactly those resources, plus a redeployment.
    let changed = std::env::temp_dir().join(format!("contractc-deploy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&changed);
    copy_dir(&repo().join("generated"), &changed);
    let script = changed.join("game_events/glue/streaming_job.py");
    let mut text = std::fs::read_to_string(&script).expect("script");
    text.push_str("# a new version\n");
    std::fs::write(&script, text).expect("write");
    let model_path = changed.join("game_events/apigateway/request-model.json");
    let mut model: Value =
        serde_json::from_slice(&std::fs::read(&model_path).expect("model")).expect("json");
    model["description"] = Value::String("a new version".into());
    std::fs::write(&model_path, model.to_string()).expect("write");
    let plan = runtime(
        &moto,
        &[
            "deploy",
            "--plan",
            "--generated",
            changed.to_str().expect("utf-8"),
        ],
    );
    let planned = stdout(&plan);
    let lines: Vec<&str> = planned
        .lines()
        .filter(|l| l.starts_with('~') || l.starts_with('+'))
        .collect();
    assert_eq!(
        lines,
        [
            "~ update s3 object s3://contractc-artifacts/contractc/game_events/streaming_job.py (script bytes)",
            "~ update api gateway model GameEventsEvent (model schema)",
            "+ create api gateway deployment contractc-game_events stage prod",
        ],
        "{}",
        stdout(&plan)
    );
    let applied = runtime(
        &moto,
        &[
            "deploy",
            "--apply",
            "--generated",
            changed.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(
        applied.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );

    // An update moto does not implement fails clearly, naming the call.
    let other_role = runtime(
        &moto,
        &[
            "deploy",
            "--apply",
            "--glue-role-arn",
            "arn:aws:iam::123456789012:role/other",
        ],
    );
    assert_eq!(other_role.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&other_role.stderr);
    assert!(stderr.contains("glue:UpdateJob"), "{stderr}");

    let status = runtime(&moto, &["status"]);
    assert!(
        stdout(&status).contains("kinesis stream contractc-game_events: ACTIVE"),
        "{}",
        stdout(&status)
    );
    assert!(stdout(&status).contains("SUCCEEDED"), "{}", stdout(&status));
    let _ = std::fs::remove_dir_all(&changed);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}
