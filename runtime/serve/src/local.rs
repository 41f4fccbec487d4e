//! Whether a request comes from this machine, in a way that holds behind a reverse proxy.
//!
//! The listen address proves nothing: behind TLS termination on the same host every client
//! arrives from loopback. A request counts as local only when the peer is a loopback address,
//! no forwarding header says it was relayed, and its `Host` names this machine (an IP literal
//! or `localhost`), which also turns away DNS rebinding (a page whose own name resolves to
//! 127.0.0.1 sends its own name as `Host`).

use std::net::{IpAddr, SocketAddr};

use axum::http::{HeaderMap, header};

/// Headers a proxy adds when it relays a request (RFC 7239 and the de-facto ones).
const FORWARDING_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-real-ip",
    "via",
];

/// Whether a proxy says it relayed this request.
pub fn is_forwarded(headers: &HeaderMap) -> bool {
    FORWARDING_HEADERS
        .iter()
        .any(|name| headers.contains_key(*name))
}

/// The host part of a `Host` header value (`[::1]:8080` → `::1`, `a.b:80` → `a.b`).
pub fn host_name(value: &str) -> &str {
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match value.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    }
}

/// The request's `Host`, lower-cased without the port (None when absent or not text).
pub fn request_host(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::HOST)?.to_str().ok()?;
    Some(host_name(value.trim()).to_ascii_lowercase())
}

/// A `Host` naming this machine: `localhost` (and its subdomains, RFC 6761) or a loopback IP.
pub fn is_local_host(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of an `http(s)://host[:port]/…` URL, lower-cased.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let host = host_name(authority);
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The request came straight from a process on this machine.
pub fn is_direct_local(peer: SocketAddr, headers: &HeaderMap) -> bool {
    peer.ip().is_loopback()
        && !is_forwarded(headers)
        && request_host(headers).is_some_and(|host| is_local_host(&host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_direct_loopback_requests_for_a_local_host_are_local() {
        let loopback: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let remote: SocketAddr = "203.0.113.9:5000".parse().unwrap();
        let local = headers(&[("host", "127.0.0.1:8080")]);
        assert!(is_direct_local(loopback, &local));
        assert!(is_direct_local(
            loopback,
            &headers(&[("host", "localhost:8080")])
        ));
        assert!(is_direct_local(
            loopback,
            &headers(&[("host", "[::1]:8080")])
        ));
        assert!(!is_direct_local(remote, &local));
        assert!(!is_direct_local(loopback, &headers(&[])));
        // Relayed by a proxy on this machine: the client is elsewhere.
        for name in FORWARDING_HEADERS {
            let mut relayed = local.clone();
            relayed.insert(name, HeaderValue::from_static("203.0.113.9"));
            assert!(!is_direct_local(loopback, &relayed), "{name}");
        }
        // DNS rebinding: the page's own name, resolved to 127.0.0.1.
        assert!(!is_direct_local(
            loopback,
            &headers(&[("host", "evil.example:8080")])
        ));
    }

    #[test]
    fn url_hosts() {
        assert_eq!(
            url_host("https://Games.Example:8443/x").as_deref(),
            Some("games.example")
        );
        assert_eq!(
            url_host("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("a.example:80"), "a.example");
        assert_eq!(host_name("a.example"), "a.example");
        assert_eq!(host_name("[::1]:8080"), "::1");
        assert_eq!(host_name("[::1]"), "::1");
    }
}
