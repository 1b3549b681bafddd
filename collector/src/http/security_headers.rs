//! The headers every answer of the HTTP server carries — the viewer's pages and assets, the API's
//! answers and errors, `/metrics`, `/healthz`, the live feed — so no answer can be framed,
//! sniffed into another type, or leak the address it was read from.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;

/// What a page may load and run: only its own scripts (no inline script, no `eval`), styles of its
/// own (React Flow positions nodes by inline `style` attributes), data: images (the favicon),
/// requests to its own origin only, nothing framed, no plugins, no `<base>`. Event payloads and
/// headers are rendered as text anyway; this is the second wall.
pub const VIEWER_CSP: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
     form-action 'self'";

/// Every security header and its value.
pub const SECURITY_HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, VIEWER_CSP),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (
        HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    ),
];

/// Adds [`SECURITY_HEADERS`] to `response` (a handler's own value of one is kept).
pub(super) async fn add_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}
