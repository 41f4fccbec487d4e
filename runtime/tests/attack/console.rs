//! Findings 4, 5 and 8 of the second review (#27) on the quality console and the dev-only
//! scope switch: access that holds behind a reverse proxy on the same host, no readable
//! answers for other origins, no DNS rebinding, and the token kept out of URLs and `ps`.

use std::process::Command;

use serde_json::Value;

use super::common::{Server, client, free_port, guest_token, temp_dir};
use super::game_event;

/// The token `serve` made at its first start (no token given).
fn kept_token(server: &Server) -> String {
    std::fs::read_to_string(server.data_dir.join("console-token"))
        .expect("serve keeps the console token in the data directory")
        .trim()
        .to_string()
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("request").status().as_u16()
}

/// Finding 4: behind a proxy on this host every client arrives from loopback; the console
/// must not be open to them. It needs its token unless opened explicitly, and even then only
/// for requests straight from this machine.
#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_closed_to_requests_relayed_by_a_proxy() {
    let dir = temp_dir("attack-console-proxy");
    let server = Server::start_with(&dir.join("data"), free_port(), &[]);
    let events = format!("{}/console/api/overview", server.base);
    // What nginx or Caddy in front of serve sends: the client is elsewhere.
    let relayed = || {
        client()
            .get(&events)
            .header("x-forwarded-for", "203.0.113.7")
            .header("x-forwarded-proto", "https")
    };
    assert_eq!(
        status_of(relayed()).await,
        401,
        "a relayed request without the token"
    );
    assert_eq!(
        status_of(client().get(&events)).await,
        401,
        "no token, not opened"
    );
    let token = kept_token(&server);
    assert_eq!(status_of(relayed().bearer_auth(&token)).await, 200);
    server.stop();

    let server = Server::start_with(&dir.join("data"), free_port(), &["--console-open"]);
    let events = format!("{}/console/api/overview", server.base);
    assert_eq!(
        status_of(client().get(&events)).await,
        200,
        "opened, straight from here"
    );
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.7"),
        ("forwarded", "for=203.0.113.7;proto=https"),
        ("x-real-ip", "203.0.113.7"),
    ] {
        let status = status_of(client().get(&events).header(name, value)).await;
        assert_eq!(status, 401, "opened, but relayed ({name})");
    }
    server.stop();
}

/// Finding 4: `--dev-mint-scopes` had the same loopback trap.
#[tokio::test(flavor = "multi_thread")]
async fn relayed_requests_cannot_mint_the_authenticated_scope() {
    let dir = temp_dir("attack-mint-proxy");
    let server = Server::start(&dir.join("data"), free_port());
    let login = format!("{}/prod/login-as-guest?scope=authenticated", server.base);
    assert_eq!(
        status_of(client().get(&login)).await,
        200,
        "straight from here"
    );
    let relayed = client()
        .get(&login)
        .header("x-forwarded-for", "203.0.113.7");
    assert_eq!(status_of(relayed).await, 403);
    let rebound = client().get(&login).header("host", "evil.example");
    assert_eq!(status_of(rebound).await, 403, "a page on another name");
    server.stop();
}

/// Finding 5: the console's JSON was readable from any origin (CORS `*`), and any `Host` was
/// answered (DNS rebinding: a page whose name resolves to 127.0.0.1).
#[tokio::test(flavor = "multi_thread")]
async fn other_origins_and_other_hosts_cannot_read_the_console() {
    let dir = temp_dir("attack-console-origin");
    let server = Server::start_with(&dir.join("data"), free_port(), &["--console-open"]);
    let overview = format!("{}/console/api/overview", server.base);
    let answer = client()
        .get(&overview)
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("overview");
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "no CORS header on the console: {:?}",
        answer.headers()
    );
    let preflight = client()
        .request(reqwest::Method::OPTIONS, &overview)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The ingest routes keep their CORS answers (browser games need them).
    let ingest = client()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/prod/put-record", server.base),
        )
        .header("origin", "https://game.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("ingest preflight");
    assert!(
        ingest
            .headers()
            .get("access-control-allow-origin")
            .is_some()
    );
    let rebound = client()
        .get(&overview)
        .header("host", "evil.example:8080")
        .send()
        .await
        .expect("rebound");
    assert_eq!(rebound.status(), 421, "another host name is refused");
    assert!(
        rebound
            .text()
            .await
            .unwrap_or_default()
            .contains("evil.example")
    );
    server.stop();
}

/// Finding 8: beyond loopback the console's guard answered every unknown path (not a 404),
/// and a token given in the URL stayed there, in a cookie without `Secure`.
#[tokio::test(flavor = "multi_thread")]
async fn unknown_paths_are_404_and_the_token_leaves_the_url() {
    let dir = temp_dir("attack-console-url");
    let port = free_port();
    let data = dir.join("data");
    let server = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args([
            "serve",
            "--listen",
            &format!("0.0.0.0:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .stderr(std::fs::File::create(dir.join("serve.log")).expect("log"))
        .spawn()
        .expect("serve starts");
    let server = Server::adopt(server, &data, port);
    for path in ["/no/such/path", "/console-not", "/.env"] {
        let status = status_of(client().get(format!("{}{path}", server.base))).await;
        assert_eq!(status, 404, "{path}");
    }
    let token = kept_token(&server);
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let answer = no_redirects
        .get(format!("{}/console/?window=1h&token={token}", server.base))
        .send()
        .await
        .expect("page");
    assert_eq!(answer.status(), 303, "the token is moved out of the URL");
    let location = answer.headers()["location"].to_str().expect("location");
    assert_eq!(location, "/console/?window=1h");
    let cookie = answer.headers()["set-cookie"].to_str().expect("cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let with_cookie = no_redirects
        .get(format!("{}{location}", server.base))
        .header("cookie", cookie.split(';').next().unwrap_or_default())
        .send()
        .await
        .expect("page with the cookie");
    assert_eq!(with_cookie.status(), 200);
    server.stop();
}

/// Finding 8: the console token was a command-line flag, visible to every user in `ps`.
#[test]
fn the_console_token_is_never_a_command_line_argument() {
    let dir = temp_dir("attack-console-flag");
    let out = Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
        .args(["serve", "--console-token", "s3cret", "--data-dir"])
        .arg(dir.join("data"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--console-token-file"), "{text}");
    // From a file (or the environment) it works.
    let file = dir.join("token");
    std::fs::write(&file, "from-a-file\n").expect("token file");
    let port = free_port();
    let file_arg = file.to_string_lossy().into_owned();
    let server = Server::start_with(
        &dir.join("data"),
        port,
        &["--console-token-file", &file_arg],
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(status_of(
        client()
            .get(format!("{}/console/api/overview", server.base))
            .bearer_auth("from-a-file"),
    ));
    assert_eq!(status, 200);
    server.stop();
}

/// Finding 8: one event with 120 junk keys pushed a real violation out of the console's list.
#[tokio::test(flavor = "multi_thread")]
async fn junk_keys_do_not_hide_a_real_violation() {
    let dir = temp_dir("attack-console-junk");
    let server = Server::start_with(
        &dir.join("data"),
        free_port(),
        &["--console-open", "--guests-per-minute", "0"],
    );
    let token = guest_token(&server.base).await;
    let post = |body: String| {
        client()
            .post(format!("{}/prod/put-record", server.base))
            .header("authorization", &token)
            .body(body)
            .send()
    };
    // First an event with nothing but junk keys, then one that breaks a real rule.
    let mut junk: serde_json::Map<String, Value> =
        serde_json::from_str(&game_event("junk")).expect("event");
    for i in 0..120 {
        junk.insert(format!("junk{i:03}"), Value::from(i));
    }
    assert_eq!(
        post(Value::Object(junk).to_string())
            .await
            .expect("post")
            .status(),
        400
    );
    let mut real: serde_json::Map<String, Value> =
        serde_json::from_str(&game_event("real")).expect("event");
    real.insert("event_id".into(), Value::from("not an id!"));
    assert_eq!(
        post(Value::Object(real).to_string())
            .await
            .expect("post")
            .status(),
        400
    );
    let rules: Value = client()
        .get(format!(
            "{}/console/api/violations?contract=game_events",
            server.base
        ))
        .send()
        .await
        .expect("violations")
        .json()
        .await
        .expect("json");
    let listed = rules.to_string();
    assert!(
        listed.contains("\"$.event_id\""),
        "the broken pattern rule keeps its row: {listed}"
    );
    server.stop();
}
