//! The gate every request passes on the resource the router matched: the browser
//! protection (`site.rs`) and then authorisation (`auth.rs`), both decided on the
//! matched route's [`Access`], and the route template noted for the request metrics.
//!
//! The gate wraps each resource (and the fallback for unmatched paths) rather than the
//! whole application, because only after routing is it known which route a request is
//! for: the router decodes percent-encoded characters (`/%77s` is `/ws`), so a decision
//! made on the path as spelt could be dodged by spelling it differently.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::Data;
use actix_web::{HttpMessage, HttpResponse, ResponseError};

use super::access::Access;
use super::auth;
use super::error::ApiError;
use super::site::{self, Pass, SitePolicy};

/// What the router matched: a route template and the access of each method it serves.
#[derive(Debug)]
pub struct RouteTag {
    /// The template (`/api/system/supervisor/workers/{name}/stop`), or `unmatched`.
    pub template: &'static str,
    methods: Vec<(Method, Access)>,
}

impl RouteTag {
    pub fn new(template: &'static str, methods: Vec<(Method, Access)>) -> Self {
        Self { template, methods }
    }

    /// The tag of the fallback that answers paths no route matches.
    pub fn unmatched() -> Self {
        Self::new("unmatched", Vec::new())
    }

    /// The access of `method` on this resource. HEAD is a GET; a method the resource
    /// does not serve is answered 405 without reaching a handler, so it is `Unmatched`.
    pub fn access(&self, method: &Method) -> Access {
        let method = if *method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        self.methods
            .iter()
            .find(|(m, _)| m == method)
            .map_or(Access::Unmatched, |(_, a)| *a)
    }
}

/// The template of the route a request matched, left in the request's extensions for
/// the request metrics (read after the response).
#[derive(Debug, Clone, Copy)]
pub struct MatchedRoute(pub &'static str);

/// Site policy, then authorisation, for a request the router gave to `tag`'s resource.
pub async fn gate(
    tag: &RouteTag,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    req.extensions_mut().insert(MatchedRoute(tag.template));
    let access = tag.access(req.method());
    let verdict = match (
        req.app_data::<Data<SitePolicy>>(),
        req.app_data::<Data<auth::Credentials>>(),
    ) {
        (Some(policy), Some(auth)) => site::screen(&req, policy, access)
            .and_then(|pass| auth::screen(&req, auth, access).map(|()| pass)),
        // Wiring error: fail closed.
        _ => Err(ApiError::Forbidden(
            "Request refused: the server's access policy is missing".into(),
        )),
    };
    match verdict {
        Ok(Pass::Continue) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Ok(Pass::WithCors(origin)) => {
            let mut res = next.call(req).await?;
            site::cors_headers(res.headers_mut(), &origin, false);
            Ok(res.map_into_left_body())
        }
        Ok(Pass::Preflight(origin)) => {
            let mut resp = HttpResponse::build(StatusCode::NO_CONTENT).finish();
            site::cors_headers(resp.headers_mut(), &origin, true);
            Ok(req.into_response(resp).map_into_right_body())
        }
        Err(error) => Ok(req
            .into_response(error.error_response())
            .map_into_right_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_method_the_resource_does_not_serve_is_unmatched() {
        let tag = RouteTag::new("/ws", vec![(Method::GET, Access::Socket)]);
        assert_eq!(tag.access(&Method::GET), Access::Socket);
        assert_eq!(tag.access(&Method::HEAD), Access::Socket);
        assert_eq!(tag.access(&Method::POST), Access::Unmatched);
        assert_eq!(tag.access(&Method::OPTIONS), Access::Unmatched);
        assert_eq!(
            RouteTag::unmatched().access(&Method::POST),
            Access::Unmatched
        );
    }
}
