//! API errors: JSON `{ "error": code, "detail": text }` with the status that says whose fault it is.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::query::QueryError;
use crate::store::StoreError;

/// The stable codes of [`ErrorBody::error`], one per status (see [`ApiError::status`]).
pub const ERROR_CODES: [&str; 4] = [
    "bad_parameter",
    "not_found",
    "unusable_value",
    "store_unavailable",
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
    /// Stable code: `bad_parameter` (400), `not_found` (404), `unusable_value` (422),
    /// `store_unavailable` (503).
    #[schema(schema_with = error_code_schema)]
    pub error: String,
    /// What was wrong, for a human.
    pub detail: String,
}

/// A failed request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A parameter could not be parsed (400).
    #[error("{0}")]
    BadParameter(String),
    /// No such event, trace, correlation or key (404).
    #[error("{0}")]
    NotFound(String),
    /// A parameter parsed but cannot be used (422), e.g. `from` after `to`.
    #[error("{0}")]
    Unusable(String),
    /// The store failed (503): the request may succeed later.
    #[error("store unavailable: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status and stable code of this error.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadParameter(_) => (StatusCode::BAD_REQUEST, "bad_parameter"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Unusable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unusable_value"),
            ApiError::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        if let ApiError::Store(e) = &self {
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

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::BadParameter(detail) => ApiError::BadParameter(detail),
            QueryError::NotFound(detail) => ApiError::NotFound(detail),
            QueryError::Unusable(detail) => ApiError::Unusable(detail),
            QueryError::Store(e) => ApiError::Store(e),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        ApiError::BadParameter(rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadParameter(rejection.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_is_declared_in_the_schema() {
        let errors = [
            ApiError::BadParameter(String::new()),
            ApiError::NotFound(String::new()),
            ApiError::Unusable(String::new()),
            ApiError::Store(StoreError::UnsupportedUrl(String::new())),
        ];
        let codes: Vec<&str> = errors.iter().map(|e| e.status().1).collect();
        assert_eq!(codes, ERROR_CODES);
    }
}
