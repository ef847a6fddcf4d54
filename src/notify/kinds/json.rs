//! Plain JSON: the alert as the API lists it, with what happened (`notification`),
//! for scripts and tools of any kind.

use crate::alerts::Identity;
use crate::config::WebhookConfig;
use crate::notify::http::{self, Body};
use crate::notify::kind::NotifierKind;
use crate::notify::message::{plain, Entry};

pub static KIND: NotifierKind = NotifierKind {
    name: "json",
    schemes: &["https", "http"],
    options: &[],
    http: true,
    make: |s| Ok(http::sender(s, "", render)),
};

fn render(e: &Entry, _: &Identity, _: &WebhookConfig) -> Body {
    Body::Json(plain(e))
}
