//! Extractors whose rejections are [`ApiError`]s, so a handler takes its parameters plainly and a
//! path or query string that does not parse is answered like every other bad parameter (400,
//! JSON).

use axum::extract::{FromRequestParts, Path, Query};

use super::error::ApiError;

/// Path parameters; a segment that does not parse is a bad parameter (400, [`ApiError::bad_parameter`]).
#[derive(Debug, FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters; a query string that does not parse is a bad parameter (400, [`ApiError::bad_parameter`]).
#[derive(Debug, FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);
