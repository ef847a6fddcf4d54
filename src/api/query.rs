//! Query-string parsing with errors that name the parameter (never serde's wording).

use actix_web::HttpRequest;
use std::collections::HashMap;

use super::error::ApiError;

pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    pub fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(req.query_string()).map_err(|_| {
                ApiError::BadRequest("The query string is not valid URL encoding".into())
            })?;
        Ok(Self(pairs.into_iter().collect()))
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// An integer in `min..=max`, or `default` when absent.
    pub fn int_in(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        let Some(raw) = self.0.get(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ if max == i64::MAX => Err(ApiError::BadRequest(format!(
                "Query parameter '{name}' must be an integer of at least {min} (got {raw:?})"
            ))),
            _ => Err(ApiError::BadRequest(format!(
                "Query parameter '{name}' must be an integer from {min} to {max} (got {raw:?})"
            ))),
        }
    }
}
