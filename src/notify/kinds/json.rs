//! Plain JSON: the alert as the API lists it, with what happened (`notification`),
//! for scripts and tools of any kind.

use crate::alerts::Identity;
use crate::config::WebhookConfig;
use crate::notify::kind::{Body, NotifierKind};
use crate::notify::message::{plain, Entry};

pub static KIND: NotifierKind = NotifierKind::http("json", &[], "", render);

fn render(e: &Entry, _: &Identity, _: &WebhookConfig) -> Body {
    Body::Json(plain(e))
}
