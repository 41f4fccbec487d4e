//! Who may open the console. It only reads, but what it shows (bad payloads, table layout)
//! is not for everyone: open on loopback, behind `--console-token` anywhere else, and
//! refused off-loopback without a token.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// The cookie a token given once (`?token=`) is kept in.
pub const COOKIE: &str = "contractc_console";

#[derive(Debug, Clone)]
pub enum Access {
    /// Loopback without a token: anyone who can reach the port is on this machine.
    Open,
    /// The token's SHA-256 (compared as digests: equal length, no early exit on a prefix).
    Token([u8; 32]),
    /// Beyond loopback without a token.
    Refused { listen: SocketAddr },
}

impl Access {
    pub fn new(listen: SocketAddr, token: Option<&str>) -> Access {
        match token.filter(|t| !t.is_empty()) {
            Some(token) => Access::Token(Sha256::digest(token.as_bytes()).into()),
            None if listen.ip().is_loopback() => Access::Open,
            None => Access::Refused { listen },
        }
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
    match access.as_ref() {
        Access::Open => next.run(request).await,
        Access::Refused { listen } => refusal(
            StatusCode::FORBIDDEN,
            format!(
                "the quality console is off: serve listens on {listen}, beyond loopback. Start \
                 serve with --console-token TOKEN to open it (then visit /console/?token=TOKEN \
                 once, or send Authorization: Bearer TOKEN), or listen on 127.0.0.1."
            ),
        ),
        Access::Token(expected) => {
            let (token, via_query) = presented(request.headers(), request.uri().query());
            let Some(token) =
                token.filter(|t| <[u8; 32]>::from(Sha256::digest(t.as_bytes())) == *expected)
            else {
                return refusal(
                    StatusCode::UNAUTHORIZED,
                    "the quality console needs the token serve was started with \
                     (--console-token): visit /console/?token=TOKEN once, or send \
                     Authorization: Bearer TOKEN"
                        .into(),
                );
            };
            let mut response = next.run(request).await;
            // A token typed into the URL once is kept in a cookie, so the page's own
            // requests carry it (and the URL need not).
            if via_query {
                let cookie = format!(
                    "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict",
                    cookie_safe(&token)
                );
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            response
        }
    }
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
    fn loopback_is_open_and_beyond_needs_a_token() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(matches!(Access::new(local, None), Access::Open));
        assert!(matches!(Access::new(public, None), Access::Refused { .. }));
        assert!(matches!(Access::new(public, Some("t")), Access::Token(_)));
        assert!(matches!(Access::new(local, Some("t")), Access::Token(_)));
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
