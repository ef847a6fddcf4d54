//! The one place where errors become HTTP answers: every error body is
//! `{"detail": "<sentence>"}` with the status of docs/behaviour.md "Conventions".

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::actions::ActionError;
use crate::alerts::{Refused, SilenceError};
use crate::breaker::BreakerError;
use crate::cameras::CameraError;
use crate::coverage::CoverageError;
use crate::fleet::FleetError;
use crate::notify::NotifyError;
use crate::pipeline::thumbnail::ThumbnailError;
use crate::quiet::QuietError;
use crate::supervisor::SupervisorError;

/// Body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method {0} is not allowed on this path")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Unavailable(String),
    /// Something outside did not answer in time (a notifier's receiver).
    #[error("{0}")]
    GatewayTimeout(String),
    #[error("{0}")]
    Internal(String),
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(why) = self {
            tracing::error!(error = %why, "internal error answered with 500");
        }
        let mut resp = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::UNAUTHORIZED {
            resp.insert_header(("WWW-Authenticate", "ApiKey header=\"X-API-Key\""));
        }
        resp.json(ErrorBody {
            detail: self.to_string(),
        })
    }
}

impl From<SupervisorError> for ApiError {
    fn from(e: SupervisorError) -> Self {
        let detail = e.to_string();
        match e {
            SupervisorError::InvalidName(_) | SupervisorError::Conflict(_) => {
                Self::BadRequest(detail)
            }
            SupervisorError::UnknownWorker(_) => Self::NotFound(detail),
            SupervisorError::NotRunning => Self::Unavailable(detail),
        }
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        let detail = e.to_string();
        match e {
            NotifyError::Unknown(_) => Self::NotFound(detail),
            NotifyError::NotDelivered { .. } => Self::GatewayTimeout(detail),
            NotifyError::OutboxFull(_) => Self::Unavailable(detail),
            NotifyError::Outbox { .. } | NotifyError::Setup { .. } => Self::Internal(detail),
        }
    }
}

impl From<BreakerError> for ApiError {
    fn from(e: BreakerError) -> Self {
        let detail = e.to_string();
        match e {
            BreakerError::InvalidName(_) => Self::BadRequest(detail),
            BreakerError::Unknown(..) => Self::NotFound(detail),
        }
    }
}

impl From<SilenceError> for ApiError {
    fn from(e: SilenceError) -> Self {
        let detail = e.to_string();
        match e {
            SilenceError::Invalid(_) => Self::BadRequest(detail),
            SilenceError::NotFound(_) => Self::NotFound(detail),
            SilenceError::TooMany => Self::Conflict(detail),
            SilenceError::Unavailable(_) => Self::Unavailable(detail),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(e: Refused) -> Self {
        let detail = e.to_string();
        match e {
            Refused::Unprocessable(_) => Self::Unprocessable(detail),
            Refused::TooMany { .. } => Self::TooManyRequests(detail),
        }
    }
}

impl From<ThumbnailError> for ApiError {
    fn from(e: ThumbnailError) -> Self {
        let detail = e.to_string();
        match e {
            ThumbnailError::Missing => Self::NotFound(detail),
            ThumbnailError::Refused(_) => Self::BadRequest(detail),
            ThumbnailError::Undecodable(_) => Self::Unprocessable(detail),
            ThumbnailError::Unavailable(_) => Self::Unavailable(detail),
        }
    }
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::Elsewhere { .. } => Self::Conflict(e.to_string()),
        }
    }
}

impl From<CameraError> for ApiError {
    fn from(e: CameraError) -> Self {
        let detail = e.to_string();
        match e {
            CameraError::InvalidId(_) => Self::BadRequest(detail),
            CameraError::Unknown(_) => Self::NotFound(detail),
        }
    }
}

impl From<QuietError> for ApiError {
    fn from(e: QuietError) -> Self {
        let detail = e.to_string();
        match e {
            QuietError::Invalid(_) => Self::BadRequest(detail),
            QuietError::Unknown(_) => Self::NotFound(detail),
            QuietError::FromConfig(_) => Self::Conflict(detail),
            QuietError::Unavailable(_) => Self::Unavailable(detail),
        }
    }
}

impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        match e {
            ActionError::Invalid | ActionError::Expired(_) | ActionError::Used => {
                Self::Forbidden(e.to_string())
            }
            ActionError::Unavailable(_) => Self::Unavailable(e.to_string()),
            ActionError::Quiet(q) => q.into(),
            ActionError::Silence(s) => s.into(),
        }
    }
}

impl From<CoverageError> for ApiError {
    fn from(e: CoverageError) -> Self {
        let detail = e.to_string();
        match e {
            CoverageError::Unavailable(_) => Self::Unavailable(detail),
            CoverageError::UnknownCamera(_) => Self::NotFound(detail),
        }
    }
}

/// Turn actix's own extractor/routing errors into the JSON contract. Used by the
/// `JsonConfig`/`PathConfig`/`QueryConfig` error handlers.
pub fn bad_request(detail: impl Into<String>) -> actix_web::Error {
    ApiError::BadRequest(detail.into()).into()
}
