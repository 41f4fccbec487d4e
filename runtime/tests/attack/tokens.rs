//! Findings of the second security review (#27): refresh tokens and the logins that issue them.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::common::{Server, client, free_port, temp_dir};

/// A login's answer (`query`: the login's query string, with its `?`).
async fn login(client: &reqwest::Client, base: &str, query: &str) -> Value {
    let response = client
        .get(format!("{base}/prod/login-as-guest{query}"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 200, "login{query}");
    response.json().await.expect("login JSON")
}

/// The status and answer of a refresh with `token`.
async fn refresh(client: &reqwest::Client, base: &str, token: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/prod/refresh-access-token"))
        .query(&[("refresh_token", token)])
        .send()
        .await
        .expect("refresh");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The refresh token of a 200 refresh answer.
fn refresh_token_of(answer: &Value) -> String {
    answer["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token in {answer}"))
        .to_string()
}

/// A JWT's claims, read without checking its signature.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let json = URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&json).expect("JSON claims")
}

fn restart(server: Server, data: &Path, port: u16, args: &[&str]) -> Server {
    server.stop();
    Server::start_with(data, port, args)
}

/// Finding 6: a refresh spends its token; presenting a spent one again (a stolen copy) is
/// refused and revokes the login's newer token too, across restarts.
#[tokio::test(flavor = "multi_thread")]
async fn a_spent_refresh_token_is_refused_and_revokes_its_login() {
    let dir = temp_dir("attack-rotation");
    let data = dir.join("data");
    let port = free_port();
    let server = Server::start_with(&data, port, &[]);
    let http = client();
    let first = refresh_token_of(&login(&http, &server.base, "").await);
    let (status, answer) = refresh(&http, &server.base, &first).await;
    assert_eq!(status, 200, "{answer}");
    let second = refresh_token_of(&answer);
    assert_ne!(first, second, "the answer carries a new refresh token");
    // What was spent survives a restart; the newest token still refreshes after one.
    let server = restart(server, &data, port, &[]);
    let (status, answer) = refresh(&http, &server.base, &second).await;
    assert_eq!(status, 200, "{answer}");
    let third = refresh_token_of(&answer);
    // The thief presents the first token again: refused, and the player's newest is revoked.
    assert_eq!(refresh(&http, &server.base, &first).await.0, 401);
    assert_eq!(refresh(&http, &server.base, &third).await.0, 401);
    let server = restart(server, &data, port, &[]);
    assert_eq!(refresh(&http, &server.base, &third).await.0, 401);
    server.stop();
}

/// Finding 6: a rotated refresh token expires when the login's first one does.
#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_refresh_token_keeps_the_first_ones_expiry() {
    let dir = temp_dir("attack-expiry");
    let port = free_port();
    let server = Server::start_with(&dir.join("data"), port, &[]);
    let http = client();
    let first = refresh_token_of(&login(&http, &server.base, "").await);
    let expiry = claims_of(&first)["exp"].as_u64().expect("exp");
    // Past the second the first was issued in: a token issued now with a fresh lifetime
    // would expire later than the first.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut token = first;
    for _ in 0..3 {
        let (status, answer) = refresh(&http, &server.base, &token).await;
        assert_eq!(status, 200, "{answer}");
        token = refresh_token_of(&answer);
        assert_eq!(claims_of(&token)["exp"].as_u64(), Some(expiry), "{answer}");
        let left = answer["refresh_token_expires_in"]
            .as_u64()
            .expect("expires_in");
        assert!(left < 6 * 24 * 3600, "{left} s left: the answer says so");
    }
    server.stop();
}

/// Finding 6: an `authenticated` refresh token minted under --dev-mint-scopes buys nothing once
/// serve runs without the switch; a guest's still refreshes.
#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_grants_no_scope_the_server_would_not_mint_now() {
    let dir = temp_dir("attack-refresh-scope");
    let data = dir.join("data");
    let port = free_port();
    let server = Server::start_with(&data, port, &["--dev-mint-scopes"]);
    let http = client();
    let minted = login(&http, &server.base, "?scope=authenticated").await;
    assert_eq!(
        claims_of(minted["auth_token"].as_str().expect("token"))["scope"],
        "authenticated"
    );
    let guest = refresh_token_of(&login(&http, &server.base, "").await);
    let server = restart(server, &data, port, &[]);
    let (status, answer) = refresh(&http, &server.base, &refresh_token_of(&minted)).await;
    assert_eq!(status, 403, "{answer}");
    assert!(answer.get("auth_token").is_none(), "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains("--dev-mint-scopes")),
        "{answer}"
    );
    let (status, answer) = refresh(&http, &server.base, &guest).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        claims_of(answer["auth_token"].as_str().expect("token"))["scope"],
        "guest"
    );
    server.stop();
}

/// A client whose requests come from `source` (any 127.x address reaches 127.0.0.1).
fn client_from(source: Ipv4Addr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Finding 8: refreshes and returning-guest logins (two RSA signatures each) are throttled per
/// client address, with a Retry-After; another address is not held back.
#[tokio::test(flavor = "multi_thread")]
async fn refresh_and_returning_login_floods_get_429() {
    let dir = temp_dir("attack-renewals");
    let port = free_port();
    // One more a minute: the quota cannot refill while the floods run.
    let server = Server::start_with(
        &dir.join("data"),
        port,
        &["--renewals-per-minute", "1", "--renewal-burst", "5"],
    );
    let first = client_from(Ipv4Addr::new(127, 0, 0, 1));
    let guest = login(&first, &server.base, "").await;
    let returning = format!(
        "?user_id={}&guest_secret={}",
        guest["user_id"].as_str().expect("user"),
        guest["guest_secret"].as_str().expect("secret")
    );
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = first
            .get(format!("{}/prod/login-as-guest{returning}", server.base))
            .send()
            .await
            .expect("login");
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
        }
        statuses.push(response.status().as_u16());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 14, "returning logins: {statuses:?}");

    // Refreshes from another address: its own quota, spent the same way.
    let second = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let mut token = refresh_token_of(&guest);
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let response = second
            .get(format!("{}/prod/refresh-access-token", server.base))
            .query(&[("refresh_token", &token)])
            .send()
            .await
            .expect("refresh");
        let status = response.status().as_u16();
        if status == 429 {
            assert!(response.headers().contains_key("retry-after"));
        } else if status == 200 {
            token = refresh_token_of(&response.json().await.expect("json"));
        }
        statuses.push(status);
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(
        limited >= 14 && statuses[0] == 200,
        "refreshes: {statuses:?}"
    );
    server.stop();
}
