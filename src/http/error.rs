//! The HTTP API's error: every failure is `{ "error": "<what is wrong>" }`
//! with the right status. `JsonBody` reads any body as JSON (whatever its
//! content type) and maps every rejection to this error.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::chat::ChatError;
use crate::market::publish::InvalidItems;
use crate::server::service::BodyTimeout;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(u64),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("Rate limit exceeded")]
    RateLimited(std::time::Duration),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
        }
    }
}

impl From<InvalidItems> for ApiError {
    fn from(e: InvalidItems) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> Self {
        match e {
            ChatError::Store(e @ StoreError::UnknownMessage) => ApiError::NotFound(e.to_string()),
            ChatError::Store(e @ StoreError::Deleted) => ApiError::Conflict(e.to_string()),
            ChatError::Store(e) => ApiError::Unavailable(e.to_string()),
            e @ (ChatError::NotAllowed | ChatError::AuthorizationUnavailable | ChatError::Forbidden(_)) => {
                ApiError::Forbidden(e.to_string())
            }
            other => ApiError::BadRequest(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match &self {
            ApiError::RateLimited(retry_after) => {
                json!({ "error": self.to_string(), "retryAfterMs": retry_after.as_millis().max(1) as u64 })
            }
            _ => json!({ "error": self.to_string() }),
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let ApiError::Unauthorized(_) = self {
            response
                .headers_mut()
                .insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON request body, read within the router's body limit.
pub struct JsonBody(pub Value);

/// The body limit, so the 413 message can say it.
#[derive(Clone, Copy)]
pub struct BodyLimit(pub u64);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = req.extensions().get::<BodyLimit>().map_or(0, |l| l.0);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else if let Some(timeout) = find_source::<BodyTimeout>(&rejection) {
                ApiError::RequestTimeout(timeout.to_string())
            } else {
                ApiError::BadRequest(format!("could not read the body: {rejection}"))
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest("empty body: expected JSON".into()));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))
    }
}

/// The first error of type `E` in `error`'s source chain.
fn find_source<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}
