//! One request to an AI service: how it can go wrong, whether that counts against the
//! service's breaker, and how its answer is read.

use super::metrics::Outcome;

/// What went wrong with one attempt.
#[derive(Debug)]
pub enum Attempt {
    Status(u16, String),
    Timeout,
    Connect(String),
    /// The service answered 2xx with a body we cannot use.
    Invalid(String),
    /// The LLM answered but its content held no usable JSON (retried, not a failure).
    Unparseable(String),
}

impl Attempt {
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            Self::Timeout
        } else if e.is_connect() {
            Self::Connect(crate::redact::error(&e))
        } else if e.is_decode() {
            Self::Invalid(crate::redact::error(&e))
        } else {
            Self::Connect(crate::redact::error(&e))
        }
    }

    /// Does this count against the service's breaker?
    pub fn is_failure(&self) -> bool {
        match self {
            Self::Status(s, _) => *s >= 500 || *s == 408 || *s == 429,
            Self::Timeout | Self::Connect(_) | Self::Invalid(_) => true,
            Self::Unparseable(_) => false,
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            Self::Status(s, _) if *s < 500 => Outcome::ClientError,
            Self::Status(..) => Outcome::ServerError,
            Self::Timeout => Outcome::Timeout,
            Self::Connect(_) => Outcome::ConnectError,
            Self::Invalid(_) | Self::Unparseable(_) => Outcome::InvalidResponse,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Status(s, d) => format!("HTTP {s}: {d}"),
            Self::Timeout => "timed out".into(),
            Self::Connect(e) => format!("connection failed: {e}"),
            Self::Invalid(e) => format!("invalid response: {e}"),
            Self::Unparseable(e) => format!("unusable answer: {e}"),
        }
    }
}

/// Parse a 2xx JSON body, or turn a non-2xx answer into `Attempt::Status` with the
/// service's `detail` when it sent one.
pub async fn json_or_status<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
) -> Result<T, Attempt> {
    let status = resp.status();
    if status.is_success() {
        return resp.json::<T>().await.map_err(Attempt::from_reqwest);
    }
    let text = resp.text().await.unwrap_or_default();
    let detail = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_else(|| text.chars().take(200).collect());
    Err(Attempt::Status(status.as_u16(), detail))
}
