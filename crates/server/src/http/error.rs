//! The HTTP layer's one error type, rendered in the shape of the API that failed, so existing
//! clients parse it: Prometheus's `{"status":"error","errorType":…,"error":…}`, Alertmanager
//! v2's bare JSON string, medic's `{"status":"error","error":…}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Which API's error shape a response takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Prometheus's HTTP API (`/api/v1/query`, `/api/v1/series`, …).
    Prometheus,
    /// Alertmanager's API v2 (`/api/v2/…`).
    Alertmanager,
    /// medic's own API (`/api/v1/medic/…`).
    Medic,
}

/// An HTTP error: a status, a Prometheus `errorType`, a message, and the shape to render.
#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub dialect: Dialect,
}

/// The name Prometheus's API has used for its errors.
pub type ApiError = HttpError;

impl HttpError {
    /// A Prometheus error with any status and `errorType`.
    pub fn with_status(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        HttpError {
            status,
            kind,
            message: message.into(),
            dialect: Dialect::Prometheus,
        }
    }

    /// 400 `bad_data`: the request is malformed.
    pub fn bad_data(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::BAD_REQUEST, "bad_data", message)
    }

    /// 413 `bad_data`: the request body is over a limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::PAYLOAD_TOO_LARGE, "bad_data", message)
    }

    /// 422 `execution`: the request was understood but could not be carried out.
    pub fn execution(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::UNPROCESSABLE_ENTITY, "execution", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::with_status(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// An Alertmanager v2 error.
    pub fn alertmanager(status: StatusCode, message: impl Into<String>) -> Self {
        Self::with_status(status, "", message).in_dialect(Dialect::Alertmanager)
    }

    /// A medic API error.
    pub fn medic(status: StatusCode, message: impl Into<String>) -> Self {
        Self::with_status(status, "", message).in_dialect(Dialect::Medic)
    }

    pub fn in_dialect(mut self, dialect: Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// As an Alertmanager v2 response.
    pub fn v2(self) -> Response {
        self.in_dialect(Dialect::Alertmanager).into_response()
    }

    /// As a medic API response.
    pub fn medic_response(self) -> Response {
        self.in_dialect(Dialect::Medic).into_response()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let body = match self.dialect {
            Dialect::Prometheus => {
                json!({"status": "error", "errorType": self.kind, "error": self.message})
            }
            Dialect::Alertmanager => Value::String(self.message),
            Dialect::Medic => json!({"status": "error", "error": self.message}),
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<medic_heal::Error> for HttpError {
    fn from(e: medic_heal::Error) -> Self {
        let status = match &e {
            medic_heal::Error::NotFound(_) => StatusCode::NOT_FOUND,
            medic_heal::Error::Invalid(_) | medic_heal::Error::Playbook { .. } => {
                StatusCode::BAD_REQUEST
            }
            medic_heal::Error::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError::medic(status, e.to_string())
    }
}

/// `{"status":"success","data":…}`, the success shape of Prometheus's API and medic's.
pub fn success(data: Value) -> Response {
    Json(json!({"status": "success", "data": data})).into_response()
}

/// medic's success shape (the same as Prometheus's).
pub fn medic_ok(data: Value) -> Response {
    success(data)
}

/// A medic API error response.
pub fn medic_err(status: StatusCode, msg: impl Into<String>) -> Response {
    HttpError::medic(status, msg).into_response()
}

/// An Alertmanager v2 error response.
pub fn v2_error(status: StatusCode, msg: impl Into<String>) -> Response {
    HttpError::alertmanager(status, msg).into_response()
}

/// A heal engine error as a medic API response.
pub fn heal_err(e: medic_heal::Error) -> Response {
    HttpError::from(e).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(r: Response) -> (StatusCode, Value) {
        let status = r.status();
        let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&b).unwrap())
    }

    #[tokio::test]
    async fn each_api_gets_its_own_error_shape() {
        let (s, v) = body(HttpError::bad_data("bad").into_response()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            v,
            json!({"status": "error", "errorType": "bad_data", "error": "bad"})
        );
        let (s, v) = body(v2_error(StatusCode::NOT_FOUND, "no silence")).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v, json!("no silence"));
        let (s, v) = body(heal_err(medic_heal::Error::NotFound("no x".into()))).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(v, json!({"status": "error", "error": "no x"}));
    }
}
