//! Reading a request's body: bounded in size and in time. A body that does not
//! arrive whole within [`BODY_WITHIN`] is answered 408 and its connection closed, so
//! a caller sending a byte now and then cannot hold a connection (and a descriptor)
//! open for ever.

use std::time::Duration;

use actix_web::web::Payload;
use actix_web::HttpRequest;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// The longest a body may take to arrive.
pub const BODY_WITHIN: Duration = Duration::from_secs(10);

/// The body, whole, if it is at most `limit` bytes and arrives within
/// [`BODY_WITHIN`].
pub async fn read(req: &HttpRequest, mut body: Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::PayloadTooLarge(format!("The body may be at most {limit} bytes"));
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let whole = async {
        let mut bytes = Vec::with_capacity(declared.unwrap_or(0));
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ApiError::BadRequest(format!("Body not read: {e}")))?;
            if bytes.len() + chunk.len() > limit {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    tokio::time::timeout(BODY_WITHIN, whole)
        .await
        .map_err(|_| {
            ApiError::RequestTimeout(format!(
                "The body did not arrive within {} s",
                BODY_WITHIN.as_secs()
            ))
        })?
}

/// `bytes` as JSON of type `T`: 400 when it is not JSON, 422 when it is JSON of the
/// wrong shape (`what` names what was expected).
pub fn json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Unprocessable(format!("Not {what}: {e}")),
        _ => ApiError::BadRequest(format!("Invalid JSON body: {e}")),
    })
}
