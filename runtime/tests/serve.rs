//! `contract-runtime serve`, tested as a user runs it: the real binary on 127.0.0.1, spoken to
//! over HTTP, its tables read back by pyiceberg (an independent Iceberg reader).
//!
//! pyiceberg comes from the Python in `CONTRACTC_PYTHON` (tests/run.sh sets it to its venv);
//! without it the tests that need it fail with a message saying so.

use std::collections::BTreeMap;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use serde_json::{Value, json};

mod common;

use common::{Server, client, free_port, local_now, pyiceberg_check, repo, temp_dir};

async fn login(base: &str) -> Value {
    let response = client()
        .get(format!("{base}/prod/login-as-guest"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200);
    response.json().await.expect("login JSON")
}

const EVENT_TYPES: [&str; 5] = ["Login", "Logout", "New Game", "Resume Game", "End Game"];

/// The reference client's protocol: a guest login per event, the raw token, its event shape.
#[tokio::test(flavor = "multi_thread")]
async fn the_reference_client_protocol_works_and_tables_hold_what_was_acknowledged() {
    let dir = temp_dir("reference");
    let server = Server::start(&dir, free_port());
    let http = client();
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    for i in 0..40 {
        let guest = login(&server.base).await;
        assert_eq!(guest["auth_token_expires_in"], 900);
        assert!(guest["user_id"].as_str().is_some_and(|u| u.len() == 36));
        let event_type = EVENT_TYPES[i % EVENT_TYPES.len()];
        let event = json!({
            "event_id": format!("{:05}", i % 20 + 1),
            "event_type": event_type,
            "updated_at": local_now(),
            "event_data": format!("Quote \"{i}\" with 'apostrophes' and *stars*"),
        });
        let response = http
            .post(format!("{}/prod/put-record", server.base))
            .header(
                "Authorization",
                guest["auth_token"].as_str().expect("token"),
            )
            .header("Content-Type", "application/json")
            .body(serde_json::to_string(&event).expect("json"))
            .send()
            .await
            .expect("post");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(
            response.headers()["access-control-allow-credentials"],
            "true"
        );
        assert_eq!(
            response.text().await.expect("body"),
            "\"Successfully added event\""
        );
        *acknowledged.entry(event_type.to_string()).or_default() += 1;
    }

    // Logging in again with the secret works; a wrong one is 401, a missing one 400.
    let guest = login(&server.base).await;
    let again = http
        .get(format!("{}/prod/login-as-guest", server.base))
        .query(&[
            ("user_id", guest["user_id"].as_str().expect("id")),
            (
                "guest_secret",
                guest["guest_secret"].as_str().expect("secret"),
            ),
        ])
        .send()
        .await
        .expect("relogin");
    assert_eq!(again.status(), 200);
    let wrong = http
        .get(format!("{}/prod/login-as-guest", server.base))
        .query(&[
            ("user_id", guest["user_id"].as_str().expect("id")),
            ("guest_secret", "nope"),
        ])
        .send()
        .await
        .expect("relogin");
    assert_eq!(wrong.status(), 401);
    let missing = http
        .get(format!("{}/prod/login-as-guest", server.base))
        .query(&[("user_id", guest["user_id"].as_str().expect("id"))])
        .send()
        .await
        .expect("relogin");
    assert_eq!(missing.status(), 400);

    // Refused events: 400 with every violation, kept in the quarantine table.
    let token = guest["auth_token"].as_str().expect("token").to_string();
    let bad = http
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .body(r#"{"event_id": "a b", "event_type": "Dance", "updated_at": "yesterday"}"#)
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let body: Value = bad.json().await.expect("json");
    let codes: Vec<&str> = body["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|v| v["code"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(codes, ["pattern", "invalid_format", "one_of"]);
    let not_json = http
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("post");
    assert_eq!(not_json.status(), 400);
    let wrong_type = http
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "text/csv")
        .body("a,b")
        .send()
        .await
        .expect("post");
    assert_eq!(wrong_type.status(), 415);
    let huge = http
        .post(format!("{}/prod/put-record", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"event_data": "{}"}}"#, "x".repeat(70_000)))
        .send()
        .await
        .expect("post");
    assert_eq!(huge.status(), 413);

    // The batch route: per-event verdicts.
    let batch = http
        .post(format!("{}/prod/put-records", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(
            json!([
                {"event_id": "b1", "event_type": "Login", "updated_at": local_now()},
                {"event_id": "b2", "event_type": "Login"},
                {"event_id": "b3", "event_type": "Logout", "updated_at": local_now(), "event_data": "ok"},
            ])
            .to_string(),
        )
        .send()
        .await
        .expect("batch");
    assert_eq!(batch.status(), 200);
    let verdicts: Value = batch.json().await.expect("json");
    assert_eq!(
        (verdicts["accepted"].as_u64(), verdicts["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(verdicts["results"][1]["violations"][0]["code"], "missing");
    *acknowledged.entry("Login".into()).or_default() += 1;
    *acknowledged.entry("Logout".into()).or_default() += 1;

    let metrics = http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("contractc_events_total{contract=\"game_events\",verdict=\"accept\"} 42"),
        "{metrics}"
    );
    assert!(metrics.contains("contractc_violations_total{code=\"pattern\",contract=\"game_events\",policy=\"reject\"} 1"), "{metrics}");

    let data_dir = server.data_dir.clone();
    server.stop();
    let total: u64 = acknowledged.values().sum();
    pyiceberg_check(
        &data_dir,
        json!({
            "analytics_events_db.events_table": { "rows": total, "partition_by": "event_type", "partition_counts": acknowledged },
            "analytics_events_db.events_table_quarantine": { "rows": 3, "codes": { "pattern": 1, "one_of": 1, "invalid_json": 1, "missing": 1 } },
        }),
    );
}

fn sign(key: &EncodingKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_misdirected_tokens_are_refused() {
    let dir = temp_dir("jwt");
    let server = Server::start(&dir, free_port());
    let http = client();
    let guest = login(&server.base).await;
    let valid = guest["auth_token"].as_str().expect("token").to_string();
    let jwks: Value = http
        .get(format!("{}/.well-known/jwks.json", server.base))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_string();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    let config: Value = http
        .get(format!("{}/.well-known/openid-configuration", server.base))
        .send()
        .await
        .expect("config")
        .json()
        .await
        .expect("json");
    assert_eq!(config["issuer"], server.base);

    // The server's own key, to forge tokens that are correctly signed but wrong otherwise.
    let pem = std::fs::read_to_string(dir.join("keys/current.pem")).expect("key");
    let private = rsa::PrivateKey::from_pkcs1_pem(&pem).expect("pem");
    let key = EncodingKey::from_rsa_der(private.to_pkcs1_der().expect("der").as_bytes());
    let claims = |iss: &str, aud: &str, scope: &str, nbf: u64, exp: u64| json!({"sub": "someone", "iss": iss, "aud": aud, "scope": scope, "iat": now(), "nbf": nbf, "exp": exp, "kid": kid});
    let iss = server.base.clone();
    let t = now();
    let parts: Vec<&str> = valid.split('.').collect();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let tampered_payload = {
        let mut payload: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        payload["sub"] = json!("someone-else");
        URL_SAFE_NO_PAD.encode(payload.to_string())
    };
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let public = jwks["keys"][0]["n"].as_str().expect("n");
        jsonwebtoken::encode(
            &header,
            &claims(&iss, "gamebackend", "guest", t, t + 900),
            &EncodingKey::from_secret(public.as_bytes()).expect("hmac key"),
        )
        .expect("hs256")
    };
    let cases: Vec<(&str, String, u16)> = vec![
        ("no token", String::new(), 401),
        ("garbage", "not.a.token".into(), 401),
        ("alg none", format!("{none_header}.{}.", parts[1]), 401),
        (
            "HS256 signed with the public key",
            hs256_with_public_key,
            401,
        ),
        (
            "tampered payload",
            format!("{}.{tampered_payload}.{}", parts[0], parts[2]),
            401,
        ),
        (
            "expired",
            sign(
                &key,
                &kid,
                &claims(&iss, "gamebackend", "guest", t - 2000, t - 1000),
            ),
            401,
        ),
        (
            "not yet valid",
            sign(
                &key,
                &kid,
                &claims(&iss, "gamebackend", "guest", t + 1000, t + 2000),
            ),
            401,
        ),
        (
            "wrong issuer",
            sign(
                &key,
                &kid,
                &claims("https://evil.example", "gamebackend", "guest", t, t + 900),
            ),
            401,
        ),
        (
            "wrong audience",
            sign(&key, &kid, &claims(&iss, "other", "guest", t, t + 900)),
            401,
        ),
        (
            "unknown kid",
            sign(
                &key,
                "not-a-kid",
                &claims(&iss, "gamebackend", "guest", t, t + 900),
            ),
            401,
        ),
        (
            "missing scope",
            sign(
                &key,
                &kid,
                &claims(&iss, "gamebackend", "refresh", t, t + 900),
            ),
            403,
        ),
        // A refresh token's audience is `refresh`: it is no access token at all.
        (
            "the refresh token",
            guest["refresh_token"]
                .as_str()
                .expect("refresh")
                .to_string(),
            401,
        ),
        ("valid raw", valid.clone(), 200),
        ("valid bearer", format!("Bearer {valid}"), 200),
    ];
    let event =
        json!({"event_id": "1", "event_type": "Login", "updated_at": local_now()}).to_string();
    for (name, token, expected) in cases {
        let mut request = http
            .post(format!("{}/prod/put-record", server.base))
            .header("Content-Type", "application/json")
            .body(event.clone());
        if !token.is_empty() {
            request = request.header("Authorization", token);
        }
        let response = request.send().await.expect("post");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{name}: {body}");
        if expected == 401 {
            assert_eq!(body, r#"{"message":"Unauthorized"}"#, "{name}");
        }
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_tokens_survive_a_restart() {
    let dir = temp_dir("restart");
    let port = free_port();
    let server = Server::start(&dir, port);
    let guest = login(&server.base).await;
    server.stop();
    let server = Server::start(&dir, port);
    let response = client()
        .post(format!("{}/prod/put-record", server.base))
        .header(
            "Authorization",
            guest["auth_token"].as_str().expect("token"),
        )
        .body(
            json!({"event_id": "1", "event_type": "Login", "updated_at": local_now()}).to_string(),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    server.stop();
}

/// Under load, `kill -9`, restart: every acknowledged event is in the table exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_events_survive_a_crash_exactly_once() {
    let dir = temp_dir("crash");
    let port = free_port();
    let server = Server::start(&dir, port);
    let base = server.base.clone();
    let token = login(&base).await["auth_token"]
        .as_str()
        .expect("token")
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (base, token, stop) = (base.clone(), token.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let http = client();
            let mut acked = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 5_000 {
                let id = format!("crash-{worker}-{n}");
                n += 1;
                let event = json!({"event_id": "1", "event_type": "Login", "updated_at": local_now(), "event_data": id});
                let sent = http.post(format!("{base}/prod/put-record")).header("Authorization", &token).body(event.to_string()).send().await;
                match sent {
                    Ok(response) if response.status() == 200 => acked.push(id),
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.crash();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.await.expect("worker"));
    }
    assert!(
        acknowledged.len() > 50,
        "too little load before the crash: {}",
        acknowledged.len()
    );

    let server = Server::start(&dir, port);
    server.stop();
    pyiceberg_check(
        &dir,
        json!({
            "analytics_events_db.events_table": { "exactly_once": acknowledged, "column": "event_data" },
        }),
    );
}

/// `synth` against a running server: every answer agrees with its label, and the table holds
/// exactly the accepted events.
#[tokio::test(flavor = "multi_thread")]
async fn synth_traffic_matches_its_labels_and_lands_in_the_table() {
    let dir = temp_dir("synth");
    let port = free_port();
    let server = Server::start(&dir, port);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_contract-runtime"))
            .current_dir(repo())
            .args([
                "synth",
                "--max-count",
                "10000",
                "--invalid-ratio",
                "0.1",
                "--concurrency",
                "16",
            ])
            .args([
                "--login-endpoint",
                &format!("http://127.0.0.1:{port}/prod/"),
            ])
            .args([
                "--backend-endpoint",
                &format!("http://127.0.0.1:{port}/prod/put-record"),
            ])
            .output()
            .expect("synth runs")
    })
    .await
    .expect("join");
    let summary = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "synth failed:\n{summary}");
    assert!(summary.contains("sent 10000 "), "{summary}");
    assert!(
        summary.contains("mismatches against labels: 0"),
        "{summary}"
    );
    let accepted: u64 = summary
        .split_whitespace()
        .skip_while(|w| *w != "accepted")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no accepted count in:\n{summary}"));
    assert!(accepted > 8000, "{summary}");
    server.stop();
    pyiceberg_check(
        &dir,
        json!({ "analytics_events_db.events_table": { "rows": accepted } }),
    );
}

/// Upsert contracts keep one row per key per commit: the latest by `latest_by`.
#[tokio::test(flavor = "multi_thread")]
async fn upsert_tables_keep_the_latest_row_per_key_within_a_commit() {
    let dir = temp_dir("upsert");
    let server = Server::start(&dir, free_port());
    let http = client();
    let login: Value = http
        .get(format!(
            "{}/prod/login-as-guest?scope=authenticated",
            server.base
        ))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["auth_token"].as_str().expect("token").to_string();
    let now = now() as i64;
    let at = |minutes_ago: i64| {
        let t = now - minutes_ago * 60;
        let (y, m, d) = contract_corpus::civil_from_days(t.div_euclid(86_400));
        let r = t.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
            r / 3600,
            r % 3600 / 60,
            r % 60
        )
    };
    let event = |id: &str, minutes_ago: i64, duration: i64| {
        json!({"event_id": id, "kind": "match_ended", "occurred_at": at(minutes_ago), "match_id": "m-0123456789ab",
               "region": "eu-west", "build": {"version": "1.2.3"}, "duration_s": duration, "scores": {"a": 1}})
    };
    let a = "123e4567-e89b-12d3-a456-426614174000";
    let b = "123e4567-e89b-12d3-a456-426614174001";
    // Newest first for `a`, so arrival order alone would keep the wrong row.
    let body = json!([
        event(a, 1, 300),
        event(b, 5, 100),
        event(a, 10, 200),
        event(a, 3, 250)
    ]);
    let response = http
        .post(format!("{}/prod/match-events/batch", server.base))
        .header("Authorization", &token)
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("batch");
    assert_eq!(response.status(), 200);
    let verdicts: Value = response.json().await.expect("json");
    assert_eq!(verdicts["accepted"], 4, "{verdicts}");
    server.stop();
    // The latest `a` (1 minute ago) had duration 300; `b` had one version.
    pyiceberg_check(
        &dir,
        json!({ "multiplayer.match_events": { "rows": 2, "exactly_once": [300, 100], "column": "duration_s" } }),
    );
}

/// An external issuer: keys fetched from its JWKS URL (here another runtime's dev provider).
#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_an_external_issuer_verify_against_its_jwks() {
    use contract_serve::identity::{AuthError, KeySource, Verifier};

    let dir = temp_dir("issuer");
    let issuer = Server::start(&dir, free_port());
    let token = login(&issuer.base).await["auth_token"]
        .as_str()
        .expect("token")
        .to_string();
    let verifier = Verifier::new(
        issuer.base.clone(),
        "gamebackend".into(),
        KeySource::remote(format!("{}/.well-known/jwks.json", issuer.base)),
    );
    let claims = verifier
        .verify(Some(&token), &["guest"])
        .await
        .expect("a token of the issuer verifies");
    assert!(!claims.sub.is_empty());
    assert!(matches!(
        verifier.verify(Some(&token), &["authenticated"]).await,
        Err(AuthError::Forbidden(_))
    ));
    let other = Verifier::new(
        "https://someone-else.example".into(),
        "gamebackend".into(),
        KeySource::remote(format!("{}/.well-known/jwks.json", issuer.base)),
    );
    assert!(matches!(
        other.verify(Some(&token), &["guest"]).await,
        Err(AuthError::Unauthorized(_))
    ));
    let unknown_kid = {
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[0] = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"nope"}"#);
        parts.join(".")
    };
    assert!(matches!(
        verifier.verify(Some(&unknown_kid), &["guest"]).await,
        Err(AuthError::Unauthorized(_))
    ));
    issuer.stop();
}

/// `--trust-issuer`: tokens of the game's identity provider (here another runtime's dev
/// provider) are verified by its JWKS beside the dev issuer's, with the contract's audience and
/// scopes; the player it names is the row's `player_id`. Anything else is still refused.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_of_a_trusted_issuer_are_accepted_beside_the_dev_issuers() {
    let game_dir = temp_dir("trusted-idp");
    let game_idp = Server::start(&game_dir, free_port());
    let dir = temp_dir("trusting");
    let server = Server::start_with(
        &dir,
        free_port(),
        &[
            "--commit-interval-ms",
            "300",
            "--trust-issuer",
            &format!("{0}={0}/.well-known/jwks.json", game_idp.base),
        ],
    );
    let player = login(&game_idp.base).await;
    let guest = login(&server.base).await;
    let key_of = |dir: &std::path::Path| {
        let pem = std::fs::read_to_string(dir.join("keys/current.pem")).expect("key");
        let private = rsa::PrivateKey::from_pkcs1_pem(&pem).expect("pem");
        EncodingKey::from_rsa_der(private.to_pkcs1_der().expect("der").as_bytes())
    };
    let (game_key, own_key) = (key_of(&game_dir), key_of(&dir));
    let game_kid = kid_of(&game_idp.base).await;
    let own_kid = kid_of(&server.base).await;
    let t = now();
    let claims = |iss: &str, aud: &str, scope: &str, exp: u64| json!({"sub": "steam:76561190000000001", "iss": iss, "aud": aud, "scope": scope, "iat": t, "exp": exp});
    let game = game_idp.base.as_str();
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "the game's token",
            player["auth_token"].as_str().expect("token").into(),
            200,
        ),
        (
            "a dev guest's token",
            guest["auth_token"].as_str().expect("token").into(),
            200,
        ),
        // No `nbf`: optional, as many providers leave it out.
        (
            "the game's key, no nbf",
            sign(
                &game_key,
                &game_kid,
                &claims(game, "gamebackend", "authenticated", t + 900),
            ),
            200,
        ),
        (
            "an untrusted issuer",
            sign(
                &own_key,
                &own_kid,
                &claims("https://other.example", "gamebackend", "guest", t + 900),
            ),
            401,
        ),
        (
            "the game's issuer, signed by another key",
            sign(
                &own_key,
                &game_kid,
                &claims(game, "gamebackend", "guest", t + 900),
            ),
            401,
        ),
        (
            "the game's issuer, a key it does not publish",
            sign(
                &own_key,
                &own_kid,
                &claims(game, "gamebackend", "guest", t + 900),
            ),
            401,
        ),
        (
            "the game's key, wrong audience",
            sign(
                &game_key,
                &game_kid,
                &claims(game, "other", "guest", t + 900),
            ),
            401,
        ),
        (
            "the game's key, expired",
            sign(
                &game_key,
                &game_kid,
                &claims(game, "gamebackend", "guest", t - 60),
            ),
            401,
        ),
        (
            "the game's key, no allowed scope",
            sign(
                &game_key,
                &game_kid,
                &claims(game, "gamebackend", "refresh", t + 900),
            ),
            403,
        ),
    ];
    let http = client();
    for (n, (name, token, expected)) in cases.into_iter().enumerate() {
        let event = json!({"event_id": format!("trusted-{n}"), "event_type": "Login", "updated_at": local_now()});
        let response = http
            .post(format!("{}/prod/put-record", server.base))
            .header("Content-Type", "application/json")
            .header("Authorization", format!("Bearer {token}"))
            .body(event.to_string())
            .send()
            .await
            .expect("post");
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_eq!(status, expected, "{name}: {body}");
    }
    server.stop();
    game_idp.stop();
    pyiceberg_check(
        &dir,
        json!({ "analytics_events_db.events_table": {
            "rows": 3,
            "column": "player_id",
            "exactly_once": [player["user_id"], guest["user_id"], "steam:76561190000000001"],
        } }),
    );
}

/// The first key id of a server's JWKS.
async fn kid_of(base: &str) -> String {
    let jwks: Value = client()
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    jwks["keys"][0]["kid"].as_str().expect("kid").to_string()
}
