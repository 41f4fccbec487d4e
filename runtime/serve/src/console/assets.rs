//! The page and its assets, embedded in the binary: the console works offline, with no CDN.

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("assets/index.html");

/// (name, content type, bytes) of every asset under `/console/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    (
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/vendor/uPlot.iife.min.js"),
    ),
    (
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8",
        include_str!("assets/vendor/uPlot.min.css"),
    ),
    (
        "vendor/LICENSE",
        "text/plain; charset=utf-8",
        include_str!("assets/vendor/LICENSE"),
    ),
];

/// Scripts and styles from this origin only; payloads and docs are inserted as text or
/// sanitised HTML, and this keeps any that slipped through from running.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

fn with_headers(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    response
}

pub async fn index() -> Response {
    with_headers("text/html; charset=utf-8", INDEX)
}

pub async fn file(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => with_headers(content_type, body),
        None => (StatusCode::NOT_FOUND, "no such console asset").into_response(),
    }
}

/// Bytes the page loads: the HTML and every asset but the licence (docs/console.md).
#[cfg(test)]
fn page_bytes() -> usize {
    INDEX.len()
        + ASSETS
            .iter()
            .filter(|(n, _, _)| !n.ends_with("LICENSE"))
            .map(|(_, _, b)| b.len())
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_stays_light() {
        // uPlot is ~51 KB of it; the console's own code must not balloon.
        assert!(page_bytes() < 120 * 1024, "{} bytes", page_bytes());
    }

    #[test]
    fn every_asset_the_page_names_is_served() {
        for (name, _, _) in ASSETS.iter().filter(|(n, _, _)| !n.ends_with("LICENSE")) {
            assert!(INDEX.contains(&format!("assets/{name}")), "{name}");
        }
    }
}
