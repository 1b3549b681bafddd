//! API errors: JSON `{ "error": code, "detail": text }` with the status that says whose fault it is.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::query::QueryError;
use crate::store::StoreError;

/// The stable codes of [`ErrorBody::error`], one per status (see [`ApiError::status`]).
pub const ERROR_CODES: [&str; 11] = [
    "bad_parameter",
    "not_found",
    "unusable_value",
    "store_unavailable",
    "unauthenticated",
    "forbidden",
    "payload_too_large",
    "rate_limited",
    "busy",
    "too_many_from_client",
    "query_over_budget",
];

fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ERROR_CODES))
        .build()
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable code: `bad_parameter` (400), `unauthenticated` (401: no or a bad credential),
    /// `forbidden` (403: the role does not cover it), `not_found` (404), `unusable_value` (422),
    /// `store_unavailable` (503), `payload_too_large` (413), `rate_limited` (429), `busy` (503:
    /// the server is at a cap), `too_many_from_client` (429: the client is at its share),
    /// `query_over_budget` (503: cut at the query's time budget).
    #[schema(schema_with = error_code_schema)]
    pub error: String,
    /// What was wrong, for a human.
    pub detail: String,
}

/// A failed request: the [`QueryError`] that stopped it, answered with the status that says
/// whose fault it is ([`ApiError::status`]).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub QueryError);

impl ApiError {
    /// A parameter that could not be parsed (400).
    pub fn bad_parameter(detail: impl Into<String>) -> Self {
        Self(QueryError::BadParameter(detail.into()))
    }

    /// The HTTP status and stable code of this error: 400 for a parameter that does not parse,
    /// 404 for an unknown id, 422 for a value that parses but cannot be used, 503 when the store
    /// fails, 403 for what the asker's role does not cover.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match &self.0 {
            QueryError::BadParameter(_) => (StatusCode::BAD_REQUEST, "bad_parameter"),
            QueryError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            QueryError::Unusable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unusable_value"),
            QueryError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            QueryError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self(QueryError::Store(error))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if let QueryError::Store(e) = &self.0 {
            tracing::warn!(error = %e, "query failed in the store");
        }
        (
            status,
            Json(ErrorBody {
                error: code.to_owned(),
                detail: self.to_string(),
            }),
        )
            .into_response()
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::bad_parameter(rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_parameter(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_declared_in_the_schema() {
        let errors = [
            QueryError::BadParameter(String::new()),
            QueryError::NotFound(String::new()),
            QueryError::Unusable(String::new()),
            QueryError::Store(StoreError::UnsupportedUrl(String::new())),
        ];
        let mut codes: Vec<&str> = errors.map(|e| ApiError(e).status().1).to_vec();
        codes.push("unauthenticated");
        codes.push(ApiError(QueryError::Forbidden(String::new())).status().1);
        use super::super::{admission, limits};
        codes.extend([limits::TOO_LARGE, limits::RATE_LIMITED]);
        codes.extend([
            admission::BUSY,
            admission::CLIENT_CAP,
            admission::QUERY_BUDGET,
        ]);
        assert_eq!(codes, ERROR_CODES);
    }
}
