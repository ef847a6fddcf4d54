//! The one registry: every metric family watchpost exports is registered here, but
//! defined by the capability it describes, in that capability's own `metrics.rs`
//! (`supervisor/metrics.rs`, `pipeline/metrics.rs`, …), with intent-named methods that
//! take domain values (enums rendered through `names::Label`, or configured names), so
//! call sites never build names or label vectors and cardinality stays bounded. This
//! module keeps the build and process series, the scrape hooks and the exposition.
//!
//! `family` hands out a family by name, made the first time it is asked for: a
//! capability's metrics can be built more than once on one registry (two breakers'
//! owners, an HTTP worker thread each) and share one family.
//!
//! `counters`, `gauges`, `float_gauges` and `histograms` make the usual families in
//! one call. Their `expect("valid metric")` is on a proven invariant: every name, help
//! text and label set the capabilities pass is a constant, and building the
//! capability's metrics in any test would fail if one were invalid.

use prometheus::{
    Encoder, GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

pub const NAMESPACE: &str = "watchpost";

type RefreshHook = Box<dyn Fn() + Send + Sync>;

/// The registry, its families by name, and the hooks run before each scrape.
pub struct Metrics {
    registry: Registry,
    families: Mutex<HashMap<&'static str, Box<dyn Any + Send + Sync>>>,
    refresh_hooks: Mutex<Vec<RefreshHook>>,
}

/// The options of a family: `watchpost_<name>` with its help text.
pub fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(NAMESPACE)
}

/// The options of a histogram family with its buckets.
pub fn histogram(name: &str, help: &str, buckets: &[f64]) -> prometheus::HistogramOpts {
    prometheus::HistogramOpts::new(name, help)
        .namespace(NAMESPACE)
        .buckets(buckets.to_vec())
}

impl Metrics {
    pub fn new() -> Self {
        let m = Self {
            registry: Registry::new(),
            families: Mutex::new(HashMap::new()),
            refresh_hooks: Mutex::new(Vec::new()),
        };
        let build_info = m.gauges(
            "build_info",
            "Build information; the value is always 1.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        #[cfg(target_os = "linux")]
        m.registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::new(
                    std::process::id() as i32,
                    NAMESPACE,
                ),
            ))
            // A fresh registry: the process collector is registered once.
            .expect("process collector registered once");
        m
    }

    /// The family registered as `name` (`watchpost_<name>`), made by `make` and
    /// registered the first time it is asked for.
    pub fn family<C>(&self, name: &'static str, make: impl FnOnce() -> C) -> C
    where
        C: prometheus::core::Collector + Clone + Send + Sync + 'static,
    {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = families.get(name).and_then(|f| f.downcast_ref::<C>()) {
            return existing.clone();
        }
        let c = make();
        // Each name is asked for under one type, and registered only here, once.
        self.registry
            .register(Box::new(c.clone()))
            .expect("metric registered twice");
        families.insert(name, Box::new(c.clone()));
        c
    }

    /// The counter family `watchpost_<name>` with `labels`.
    pub fn counters(&self, name: &'static str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.family(name, || {
            IntCounterVec::new(opts(name, help), labels).expect("valid metric")
        })
    }

    /// The integer gauge family `watchpost_<name>` with `labels`.
    pub fn gauges(&self, name: &'static str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.family(name, || {
            IntGaugeVec::new(opts(name, help), labels).expect("valid metric")
        })
    }

    /// The float gauge family `watchpost_<name>` with `labels` (seconds, ages).
    pub fn float_gauges(&self, name: &'static str, help: &str, labels: &[&str]) -> GaugeVec {
        self.family(name, || {
            GaugeVec::new(opts(name, help), labels).expect("valid metric")
        })
    }

    /// The histogram family `watchpost_<name>` with `buckets` and `labels`.
    pub fn histograms(
        &self,
        name: &'static str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> HistogramVec {
        self.family(name, || {
            HistogramVec::new(histogram(name, help, buckets), labels).expect("valid metric")
        })
    }

    /// Run `hook` right before every scrape (for gauges derived from live state).
    pub fn on_scrape(&self, hook: impl Fn() + Send + Sync + 'static) {
        self.refresh_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(hook));
    }

    /// `watchpost_memory_entries{structure}`: how many entries one of watchpost's
    /// in-memory structures holds (a ring, a map, a set), read by `len` at each
    /// scrape (it must be cheap: a lock and a length). `structure` is a fixed name,
    /// so the label stays bounded. What `bench/soak.sh` follows over hours.
    pub fn entries(
        &self,
        structure: &'static str,
        len: impl Fn() -> usize + Send + Sync + 'static,
    ) {
        let g = self.gauges(
            "memory_entries",
            "Entries held by one of watchpost's in-memory structures, read at each scrape.",
            &["structure"],
        );
        let series = g.with_label_values(&[structure]);
        self.on_scrape(move || series.set(i64::try_from(len()).unwrap_or(i64::MAX)));
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        for hook in self
            .refresh_hooks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            hook();
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed families.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_structure_reports_its_length_at_each_scrape() {
        let m = Metrics::new();
        let len = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(3));
        let l = len.clone();
        m.entries("ring", move || l.load(std::sync::atomic::Ordering::Relaxed));
        assert!(m
            .render()
            .contains("watchpost_memory_entries{structure=\"ring\"} 3"));
        len.store(7, std::sync::atomic::Ordering::Relaxed);
        assert!(m
            .render()
            .contains("watchpost_memory_entries{structure=\"ring\"} 7"));
    }

    #[test]
    fn exposition_has_prefix_help_and_build_info() {
        let m = Metrics::new();
        let text = m.render();
        assert!(text.contains("watchpost_build_info{version=\""));
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("watchpost_"), "unprefixed series: {line}");
        }
    }

    #[test]
    fn a_family_asked_for_twice_is_one_family() {
        let m = Metrics::new();
        let make = || {
            prometheus::IntCounterVec::new(opts("twice_total", "A test family."), &["x"])
                .expect("valid metric")
        };
        m.family("twice_total", make)
            .with_label_values(&["a"])
            .inc();
        m.family("twice_total", make)
            .with_label_values(&["a"])
            .inc();
        assert!(m.render().contains("watchpost_twice_total{x=\"a\"} 2"));
    }
}
