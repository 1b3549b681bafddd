//! OTLP/HTTP: `POST /v1/traces` with a protobuf (`application/x-protobuf`) or JSON
//! (`application/json`) body, plain or `Content-Encoding: gzip`. The answer is in the request's
//! encoding: the export response, or a `google.rpc.Status` for an error — 400 (does not decode),
//! 413 (over the size limit), 415 (another content type or encoding), 503 with `Retry-After`
//! (busy: retry).

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::receiver::Receiver;
use super::sink::Refusal;

/// `google.rpc.Status`, the body of an OTLP/HTTP error.
#[derive(Clone, PartialEq, Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

/// The body encodings OTLP/HTTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

#[derive(Clone)]
struct Http {
    receiver: Receiver,
    max_bytes: usize,
}

/// An error answer: `status` with a `google.rpc.Status` of gRPC `code` in `encoding`.
fn error(encoding: Encoding, status: StatusCode, code: i32, message: String) -> Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus { code, message }.encode_to_vec(),
        Encoding::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    };
    let mut response = (
        status,
        [(header::CONTENT_TYPE, encoding.content_type())],
        body,
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// The request body, gunzipped when it says so, at most `max` bytes.
fn body_of(headers: &HeaderMap, body: Bytes, max: usize) -> Result<Vec<u8>, (StatusCode, String)> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body.to_vec()),
        "gzip" => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&body[..])
                .take(max as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        format!("the gzip body does not decode: {e}"),
                    )
                })?;
            if out.len() > max {
                return Err((
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("the request is over {max} bytes once decompressed"),
                ));
            }
            Ok(out)
        }
        other => Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding `{other}` is not supported: send gzip or none"),
        )),
    }
}

async fn traces(
    State(http): State<Http>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let metrics = http.receiver.metrics();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let encoding = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            metrics.count_otlp_request("http", "invalid");
            return error(
                Encoding::Json,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                3,
                format!("Content-Type `{other}` is not OTLP: send application/x-protobuf or application/json"),
            );
        }
    };
    let invalid = |status: StatusCode, message: String| {
        metrics.count_otlp_request("http", "invalid");
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            8
        } else {
            3
        };
        error(encoding, status, code, message)
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return invalid(rejection.status(), rejection.body_text()),
    };
    let bytes = match body_of(&headers, body, http.max_bytes) {
        Ok(bytes) => bytes,
        Err((status, message)) => return invalid(status, message),
    };
    let request = match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(&bytes[..])
            .map_err(|e| format!("the body is not an OTLP protobuf export request: {e}")),
        Encoding::Json => serde_json::from_slice::<ExportTraceServiceRequest>(&bytes)
            .map_err(|e| format!("the body is not an OTLP/JSON export request: {e}")),
    };
    let request = match request {
        Ok(request) => request,
        Err(message) => return invalid(StatusCode::BAD_REQUEST, message),
    };
    match http.receiver.export(&request, "http").await {
        Ok(response) => {
            let body = match encoding {
                Encoding::Protobuf => response.encode_to_vec(),
                Encoding::Json => serde_json::to_vec(&response).unwrap_or_default(),
            };
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, encoding.content_type())],
                body,
            )
                .into_response()
        }
        Err(refusal @ (Refusal::Busy | Refusal::Store(_))) => error(
            encoding,
            StatusCode::SERVICE_UNAVAILABLE,
            14,
            refusal.to_string(),
        ),
    }
}

/// The OTLP/HTTP routes: `POST /v1/traces`, bodies of at most `max_bytes`.
pub fn router(receiver: Receiver, max_bytes: usize) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .layer(DefaultBodyLimit::max(max_bytes))
        .with_state(Http {
            receiver,
            max_bytes,
        })
}

/// Serves OTLP/HTTP on `listener` until `stop`.
pub async fn serve(
    listener: TcpListener,
    receiver: Receiver,
    max_bytes: usize,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(receiver, max_bytes))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}
