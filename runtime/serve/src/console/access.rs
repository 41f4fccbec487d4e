//! Who may open the console. It only reads, but what it shows (bad payloads, request ids,
//! table layout) is not for everyone.
//!
//! The rule holds behind a reverse proxy, where every client arrives from loopback:
//! - the console always has a token (given to `serve`, or made at first start and kept in
//!   the data directory); a request presents it as `Authorization: Bearer`, the cookie, or
//!   `?token=` once (answered with the cookie and a redirect that drops it from the URL);
//! - only `--console-open` admits requests without it, and then only those straight from this
//!   machine (`crate::local`: loopback peer, no forwarding header, a local `Host`);
//! - every request must name this server in `Host` (an IP address, `localhost`, or the public
//!   URL's host): a page on another name that resolves here (DNS rebinding) is refused.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::local;

/// The cookie a token given once (`?token=`) is kept in.
pub const COOKIE: &str = "contractc_console";

#[derive(Debug, Clone)]
pub struct Access {
    /// The token's SHA-256 (compared as digests: equal length, no early exit on a prefix).
    token: [u8; 32],
    /// Where the operator finds the token, for the refusal's text.
    token_hint: String,
    /// `--console-open`: requests straight from this machine need no token.
    open_locally: bool,
    /// Host names besides IP literals and `localhost` the console answers for.
    hosts: Vec<String>,
}

impl Access {
    pub fn new(token: &str, token_hint: String, open_locally: bool, hosts: Vec<String>) -> Access {
        Access {
            token: Sha256::digest(token.as_bytes()).into(),
            token_hint,
            open_locally,
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    fn matches(&self, token: &str) -> bool {
        <[u8; 32]>::from(Sha256::digest(token.as_bytes())) == self.token
    }

    /// Whether `host` names this server: an IP address (no name to rebind), `localhost`, or
    /// a configured name.
    fn serves_host(&self, host: &str) -> bool {
        host.parse::<std::net::IpAddr>().is_ok()
            || local::is_local_host(host)
            || self.hosts.iter().any(|h| h == host)
    }
}

/// What a request presented: `Authorization: Bearer`, the cookie, or `?token=`.
fn presented(headers: &HeaderMap, query: Option<&str>) -> (Option<String>, bool) {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            pair.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        });
    let from_query = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("token="))
        .map(percent_decode);
    let via_query = bearer.is_none() && cookie.is_none() && from_query.is_some();
    (bearer.or(cookie).or(from_query), via_query)
}

/// Enough percent-decoding for a token typed into a URL.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn refusal(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text + "\n",
    )
        .into_response()
}

/// The middleware in front of every console route.
pub async fn guard(State(access): State<Arc<Access>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host = local::request_host(headers).unwrap_or_default();
    if !access.serves_host(&host) {
        return refusal(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the quality console does not answer for host {host:?}: use an IP address, \
                 localhost, or the host of --public-url"
            ),
        );
    }
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    if access.open_locally && peer.is_some_and(|peer| local::is_direct_local(peer, headers)) {
        return next.run(request).await;
    }
    let (token, via_query) = presented(headers, request.uri().query());
    let Some(token) = token.filter(|t| access.matches(t)) else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            format!(
                "the quality console needs its token ({}): open /console/?token=TOKEN once, or \
                 send Authorization: Bearer TOKEN",
                access.token_hint
            ),
        );
    };
    if via_query {
        // A token typed into the URL is moved into a cookie at once, and the URL given back
        // without it: it must not stay in the address bar, history or a Referer.
        return to_cookie(&token, request.uri());
    }
    next.run(request).await
}

/// A redirect to `uri` without its `token` parameter, setting the console's cookie.
fn to_cookie(token: &str, uri: &axum::http::Uri) -> Response {
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("token="))
        .collect();
    let location = if rest.is_empty() {
        uri.path().to_string()
    } else {
        format!("{}?{}", uri.path(), rest.join("&"))
    };
    let cookie = format!(
        "{COOKIE}={}; Path=/console; HttpOnly; Secure; SameSite=Strict",
        cookie_safe(token)
    );
    let mut response = axum::response::Redirect::to(&location).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A cookie value cannot hold `;`, `,`, spaces or quotes: such a token works as a bearer
/// token only (the cookie would not match it and is harmless).
fn cookie_safe(token: &str) -> String {
    token
        .chars()
        .filter(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\\'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_ip_addresses_localhost_or_configured() {
        let access = Access::new("t", String::new(), false, vec!["Console.Example".into()]);
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "::1",
            "localhost",
            "a.localhost",
            "console.example",
        ] {
            assert!(access.serves_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
        ] {
            assert!(!access.serves_host(host), "{host}");
        }
        assert!(access.matches("t") && !access.matches("u"));
    }

    #[test]
    fn a_token_is_found_in_bearer_cookie_or_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            presented(&headers, Some("a=1&token=s%20t")),
            (Some("s t".into()), true)
        );
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; contractc_console=abc"),
        );
        assert_eq!(presented(&headers, None), (Some("abc".into()), false));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(presented(&headers, None), (Some("xyz".into()), false));
    }
}
