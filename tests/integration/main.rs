//! Integration tests: the real binary (or the real service in-process) over HTTP,
//! against real Redis, PostgreSQL and Prometheus processes and the fake AI server.

#[path = "../support/mod.rs"]
mod support;

mod alert_loop;
mod alerts;
mod cameras;
mod causes;
mod chaos;
mod coverage;
mod first_hour;
mod fleet;
mod foundation;
mod harness;
mod hostile;
mod live;
mod maintenance;
mod monitoring;
mod notifier_kinds;
mod notify;
mod one_tap;
mod performance;
mod pipeline;
mod resilience;
mod security;
mod slow_deps;
mod status_page;
mod storage;
mod stuck;
mod supervisor;
