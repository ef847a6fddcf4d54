//! Typed configuration: one struct with a documented default for every key, loaded from
//! an optional TOML file and then overridden by `WATCHPOST_<SECTION>__<KEY>` environment
//! variables. Loading reports every bad key at once. This module does no I/O besides
//! reading the file it is given and never logs (the config holds API keys).
//!
//! - `root.rs`: `Config`, the sections together, and `validate` (section by section);
//! - `server.rs`, `deps.rs`, `pipeline.rs`, `runtime.rs`, `cameras.rs`, `coverage.rs`, `maintenance.rs`, `notify.rs`, `storage.rs`, `fleet.rs`: the sections, each with its
//!   default and its own checks (`check.rs` collects them);
//! - `urls.rs`: host names, origins and URLs as the checks and the site policy read them;
//! - `load.rs`: file and environment, every phase reported in one run.

mod cameras;
mod check;
mod coverage;
mod deps;
mod fleet;
mod load;
mod maintenance;
mod notify;
mod pipeline;
mod root;
mod runtime;
mod server;
mod storage;
mod urls;

pub use cameras::*;
pub use coverage::*;
pub use deps::*;
pub use fleet::*;
pub use load::{unused_variables, ConfigError, ENV_PREFIX};
pub use maintenance::*;
pub use notify::*;
pub use pipeline::*;
pub use root::{secs, Config};
pub use runtime::*;
pub use server::*;
pub use storage::*;
pub use urls::{normalise_host, normalise_origin, split_authority};
