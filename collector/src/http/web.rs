//! The web viewer: `ui/dist` (built by `npm run build` in `ui/`) embedded in the binary and served
//! at `/`. Every path that is not the API, `/metrics` or `/healthz` gets the viewer's page, so deep
//! links (`/flows/key/order.id/o-1001`, `/events/{id}`) work; hashed assets are cached for good.
//!
//! A binary built before `ui/dist` existed serves a page that says how to build the viewer
//! instead of a blank one; the API works either way.

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

/// The built viewer. In debug builds rust-embed reads the folder at run time, so a fresh
/// `npm run build` shows without recompiling; release builds carry the files.
#[derive(Embed)]
#[folder = "../ui/dist"]
#[allow_missing = true]
struct Assets;

/// The page served when the binary carries no viewer.
const NOT_BUILT: &str = "<!doctype html><meta charset=utf-8><title>Choreoscope</title>\
<h1>Choreoscope</h1><p>This <code>choreoscope</code> binary was built without its web viewer.</p>\
<p>Build it, then the binary:</p><pre>npm --prefix ui install\nnpm --prefix ui run build\n\
cargo build --release -p choreoscope</pre>\
<p>(<code>cargo run --release -p choreoscope -- demo</code> does both.) The query API answers \
meanwhile: <a href=/api/v1/openapi.json>/api/v1/openapi.json</a>, \
<a href=/api/v1/topology>/api/v1/topology</a>, <a href=/metrics>/metrics</a>.</p>";

/// Whether this binary carries the viewer.
pub fn is_embedded() -> bool {
    Assets::get("index.html").is_some()
}

/// Serves a file of the viewer, or its page for any other path.
pub async fn serve(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty() {
        if let Some(file) = Assets::get(path) {
            let mime = file.metadata.mimetype().to_owned();
            // Vite names assets by content hash: a name never changes meaning.
            let cache = if path.starts_with("assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            return with_headers(file.data.into_owned(), &mime, cache, StatusCode::OK);
        }
        // A missing asset is an error, not a page: a stale tab asking for an old bundle must
        // not get HTML as JavaScript.
        if path.starts_with("assets/") {
            return with_headers(
                b"no such asset".to_vec(),
                "text/plain; charset=utf-8",
                "no-cache",
                StatusCode::NOT_FOUND,
            );
        }
    }
    match Assets::get("index.html") {
        Some(index) => with_headers(
            index.data.into_owned(),
            "text/html; charset=utf-8",
            "no-cache",
            StatusCode::OK,
        ),
        None => with_headers(
            NOT_BUILT.as_bytes().to_vec(),
            "text/html; charset=utf-8",
            "no-cache",
            StatusCode::NOT_FOUND,
        ),
    }
}

fn with_headers(body: Vec<u8>, mime: &str, cache: &'static str, status: StatusCode) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(mime) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The security headers (CSP, nosniff, …) are the router's, on every answer
    // (`super::security_headers`).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}
