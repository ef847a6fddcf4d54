//! Bounded, newest-first restart history.

use crate::json::Pagination;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RestartStatus {
    /// The worker was restarted automatically.
    Success,
    /// The worker crashed (before a restart).
    Crashed,
    /// A restart attempt failed, or the worker exceeded `max_restarts`.
    Failed,
    /// An operator (re)started the worker through the API.
    Manual,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RestartEvent {
    pub worker_name: String,
    pub timestamp: DateTime<Utc>,
    pub attempt: u32,
    pub status: RestartStatus,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    pub items: Vec<RestartEvent>,
    pub pagination: Pagination,
}

pub(super) struct History {
    events: VecDeque<RestartEvent>,
    capacity: usize,
    /// Events ever pushed (a change counter).
    pushed: u64,
}

impl History {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            events: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            pushed: 0,
        }
    }

    pub(super) fn pushed(&self) -> u64 {
        self.pushed
    }

    pub(super) fn push(&mut self, event: RestartEvent) {
        self.pushed += 1;
        self.events.push_front(event);
        self.events.truncate(self.capacity);
    }

    pub(super) fn page(&self, worker: Option<&str>, limit: usize, offset: usize) -> HistoryPage {
        let matching = || {
            self.events
                .iter()
                .filter(move |e| worker.is_none_or(|w| e.worker_name == w))
        };
        let total = matching().count();
        let items: Vec<RestartEvent> = matching().skip(offset).take(limit).cloned().collect();
        let items_count = items.len();
        HistoryPage {
            items,
            pagination: Pagination::new(total, limit, offset, items_count),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(name: &str, attempt: u32) -> RestartEvent {
        RestartEvent {
            worker_name: name.into(),
            timestamp: crate::time::now(),
            attempt,
            status: RestartStatus::Crashed,
            error: None,
        }
    }

    #[test]
    fn bounded_newest_first_and_paginated_exactly() {
        let mut h = History::new(5);
        for i in 0..7 {
            h.push(ev(if i % 2 == 0 { "a" } else { "b" }, i));
        }
        let all = h.page(None, 50, 0);
        assert_eq!(all.pagination.total, 5);
        assert_eq!(all.items[0].attempt, 6);
        let a = h.page(Some("a"), 2, 0);
        assert_eq!(
            (
                a.pagination.total,
                a.pagination.items_count,
                a.pagination.has_more
            ),
            (3, 2, true)
        );
        let a2 = h.page(Some("a"), 2, 2);
        assert_eq!(
            (a2.pagination.items_count, a2.pagination.has_more),
            (1, false)
        );
        let past = h.page(None, 10, 99);
        assert_eq!(
            (past.pagination.items_count, past.pagination.has_more),
            (0, false)
        );
    }
}
