//! Quiet on purpose: maintenance windows and snoozes. During a window the alerts in
//! its scope are still decided, stored and shown (marked), and coverage counts the
//! time as maintenance; only what is told (notifications, Alertmanager) is held.
//!
//! - `window.rs`: scopes, one-off and weekly windows, occurrences across
//!   daylight-saving changes (pure);
//! - `book.rs`: the windows in force (the config's and the API's, stored in
//!   PostgreSQL, shared through a version in Redis) and the `maintenance` worker;
//! - `view.rs`: a window as the API shows it;
//! - `written.rs`: a window as the config, a request and a stored row write it;
//! - `mirror.rs`: the silences an Alertmanager should hold for the windows (pure).

mod book;
pub mod mirror;
mod view;
pub mod window;
mod written;

pub use book::Quiet;
pub use mirror::{Copy, LabelMatch};
pub use view::{Span, WindowView};
pub use window::{Scope, When, Window, WindowKind};
pub use written::{NewWindow, QuietError};
