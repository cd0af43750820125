//! The web console (docs/console.md): a page and its scripts, embedded in the binary and
//! served under `/console/`, over medic's own API. The assets are public (they hold no data);
//! every request the page makes goes through the API's authentication and permissions, and the
//! page offers only what `GET /api/v1/medic/whoami` says the signed-in identity may do.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};

/// The embedded files: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/pages.js"),
    ),
    (
        "repairs.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/repairs.js"),
    ),
    (
        "query.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/query.js"),
    ),
    (
        "more.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/more.js"),
    ),
    (
        "incidents.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/incidents.js"),
    ),
    (
        "logs.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/logs.js"),
    ),
    (
        "anomalies.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/anomalies.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

const INDEX: &str = include_str!("assets/index.html");

/// Scripts, styles and requests from medic itself only; no frames, no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A file's ETag: the start of its SHA-256, computed once per file for the process.
fn etag(name: &str) -> &'static str {
    static TAGS: std::sync::OnceLock<std::collections::HashMap<&'static str, String>> =
        std::sync::OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        std::iter::once(("index.html", INDEX))
            .chain(ASSETS.iter().map(|(n, _, b)| (*n, *b)))
            .map(|(n, b)| {
                (
                    n,
                    format!("\"{}\"", &crate::auth::sha256_hex(b.as_bytes())[..16]),
                )
            })
            .collect()
    });
    tags.get(name).map_or("\"0\"", String::as_str)
}

/// One embedded file, revalidated by its ETag on every load (a new medic serves new files).
fn serve(name: &str, body: &'static str, content_type: &'static str, req: &HeaderMap) -> Response {
    let tag = etag(name);
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::ETAG, HeaderValue::from_static(tag)),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
    ];
    let fresh = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    (headers, body).into_response()
}

/// `GET /` and `GET /console`: to the console.
pub async fn to_console() -> Redirect {
    Redirect::to("/console/")
}

/// `GET /console/`: the page.
pub async fn index(req: HeaderMap) -> Response {
    serve("index.html", INDEX, "text/html; charset=utf-8", &req)
}

/// `GET /console/assets/{file}`.
pub async fn asset(Path(file): Path<String>, req: HeaderMap) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((name, content_type, body)) => serve(name, body, content_type, &req),
        None => (StatusCode::NOT_FOUND, "no such console file\n").into_response(),
    }
}

/// The bytes a first load of the console transfers before any data: the page and every file.
pub fn first_load_bytes() -> usize {
    INDEX.len() + ASSETS.iter().map(|(_, _, b)| b.len()).sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        // Every module a module imports is served, and every served module is imported.
        let mut imported = vec!["app.js".to_string()];
        for (_, _, body) in ASSETS {
            for part in body.split("from './").skip(1) {
                imported.push(part.split('\'').next().unwrap_or("").to_string());
            }
        }
        for name in &imported {
            assert!(
                ASSETS.iter().any(|(n, _, _)| n == name),
                "{name} is imported but not embedded"
            );
        }
        for (name, _, _) in ASSETS {
            assert!(
                name.ends_with(".css") || imported.iter().any(|i| i == name),
                "{name} is never loaded"
            );
        }
        assert!(
            INDEX.contains("/console/assets/app.js") && INDEX.contains("/console/assets/style.css")
        );
        assert!(first_load_bytes() < 300 * 1024);
    }
}
