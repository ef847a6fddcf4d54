//! What coverage is made of (pure): a [`Span`] is one condition that kept images from
//! becoming detections and events, over an interval, about one [`Subject`]; a
//! camera's [`Gap`]s are the spans that touched it, split where they overlap so that
//! each moment is named by its most specific [`Cause`].

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::names::closed_set;

closed_set! {
    /// Why a camera was not watched: maintenance first (planned time is left out of
    /// availability whatever else held), then the most specific (the order decides
    /// which cause names a moment when several held; `Ord` is that order).
    #[derive(PartialOrd, Ord)]
    pub enum Cause {
        /// A maintenance window or snooze covered it: planned, so it names the time
        /// whatever else held, and availability leaves it out.
        Maintenance = "maintenance",
        /// From its last image to its next, when it went offline in between.
        CameraOffline = "camera_offline",
        /// Sending the same picture again and again.
        CameraFrozen = "camera_frozen",
        /// Turned off by an operator: its images are skipped.
        CameraDisabled = "camera_disabled",
        /// The file watcher was not running: new images were not seen.
        WatcherDown = "watcher_down",
        /// YOLO26 unavailable, its breaker open, or the detection worker not running.
        DetectionDown = "detection_down",
        /// The risk analysis (Nemotron, its breaker, the batch aggregator or the
        /// analysis worker) unavailable: detections were not analysed.
        AnalysisDown = "analysis_down",
        /// Watchpost itself was not running.
        WatchpostDown = "watchpost_down",
        /// A dependency (PostgreSQL, Redis, an AI service) was down: its own
        /// availability. A camera's gap names what that stopped instead.
        DependencyDown = "dependency_down",
    }
}

/// What a span is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// One camera, by id.
    Camera(String),
    /// Every camera (a worker, a service the pipeline needs, watchpost itself).
    Pipeline,
    /// A dependency, by name (`postgres`, `redis`, `yolo26`, …).
    Dependency(String),
}

impl Subject {
    /// The stored kind and name (the table's two columns).
    pub fn columns(&self) -> (&'static str, &str) {
        match self {
            Self::Camera(id) => ("camera", id),
            Self::Pipeline => ("pipeline", ""),
            Self::Dependency(name) => ("dependency", name),
        }
    }

    /// Read back from the stored columns.
    pub fn from_columns(kind: &str, name: &str) -> Option<Self> {
        match kind {
            "camera" => Some(Self::Camera(name.to_string())),
            "pipeline" => Some(Self::Pipeline),
            "dependency" => Some(Self::Dependency(name.to_string())),
            _ => None,
        }
    }
}

/// One condition over an interval; `end` is `None` while it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub id: String,
    pub subject: Subject,
    pub cause: Cause,
    pub detail: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
}

/// One unwatched interval of a camera, named by its most specific cause.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cause: Cause,
    pub detail: String,
}

impl Gap {
    pub fn seconds(&self) -> f64 {
        seconds(self.end - self.start)
    }
}

pub fn seconds(d: Duration) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

/// The gaps of the spans in `spans` (already those about the camera and the pipeline)
/// within `[from, to]`: overlapping causes split the interval (the most specific
/// names each part), touching parts of one cause are one gap, an open span ends at
/// `to`. Then a gap shorter than `min_gap` joins a neighbour of its cause, as does a
/// watched interval shorter than `min_gap` between two gaps of one cause; a gap is
/// never dropped nor given to another cause.
pub fn gaps(
    spans: &[&Span],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    min_gap: Duration,
) -> Vec<Gap> {
    // Boundaries: (time, span index, opens).
    let mut edges: Vec<(DateTime<Utc>, usize, bool)> = Vec::with_capacity(spans.len() * 2);
    for (i, s) in spans.iter().enumerate() {
        let start = s.start.max(from);
        let end = s.end.unwrap_or(to).min(to);
        if start < end {
            edges.push((start, i, true));
            edges.push((end, i, false));
        }
    }
    edges.sort_by_key(|&(t, _, opens)| (t, opens));
    let mut active: Vec<usize> = Vec::new();
    let mut out: Vec<Gap> = Vec::new();
    let mut k = 0;
    while k < edges.len() {
        let t = edges[k].0;
        while k < edges.len() && edges[k].0 == t {
            let (_, i, opens) = edges[k];
            if opens {
                active.push(i);
            } else if let Some(p) = active.iter().position(|&a| a == i) {
                active.swap_remove(p);
            }
            k += 1;
        }
        let Some(&next) = edges.get(k).map(|(t, _, _)| t) else {
            break;
        };
        // The most specific cause active; of its spans, the latest started says why.
        let Some(&best) = active.iter().min_by_key(|&&i| {
            let s = spans[i];
            (s.cause, std::cmp::Reverse(s.start))
        }) else {
            continue;
        };
        let s = spans[best];
        match out.last_mut() {
            Some(last) if last.cause == s.cause && last.end == t => last.end = next,
            _ => out.push(Gap {
                start: t,
                end: next,
                cause: s.cause,
                detail: s.detail.clone(),
            }),
        }
    }
    join_short(out, min_gap)
}

fn join_short(gaps: Vec<Gap>, min_gap: Duration) -> Vec<Gap> {
    if min_gap <= Duration::zero() {
        return gaps;
    }
    let mut out: Vec<Gap> = Vec::with_capacity(gaps.len());
    for g in gaps {
        match out.last_mut() {
            Some(last)
                if last.cause == g.cause
                    && (g.start - last.end < min_gap
                        || g.end - g.start < min_gap
                        || last.end - last.start < min_gap) =>
            {
                last.end = g.end;
            }
            _ => out.push(g),
        }
    }
    out
}

/// The time in `[from, to]` that `spans` cover together (their union).
pub fn covered(spans: &[&Span], from: DateTime<Utc>, to: DateTime<Utc>) -> Duration {
    let mut parts: Vec<(DateTime<Utc>, DateTime<Utc>)> = spans
        .iter()
        .map(|s| (s.start.max(from), s.end.unwrap_or(to).min(to)))
        .filter(|(a, b)| a < b)
        .collect();
    parts.sort();
    let mut total = Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (a, b) in parts {
        current = match current {
            Some((ca, cb)) if a <= cb => Some((ca, cb.max(b))),
            Some((ca, cb)) => {
                total += cb - ca;
                Some((a, b))
            }
            None => Some((a, b)),
        };
    }
    if let Some((a, b)) = current {
        total += b - a;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    fn span(subject: Subject, cause: Cause, start: i64, end: Option<i64>) -> Span {
        Span {
            id: format!("{cause:?}{start}"),
            subject,
            cause,
            detail: format!("{} from {start}", cause.as_str()),
            start: at(start),
            end: end.map(at),
        }
    }

    fn cam(cause: Cause, start: i64, end: Option<i64>) -> Span {
        span(Subject::Camera("porch".into()), cause, start, end)
    }

    fn all(cause: Cause, start: i64, end: Option<i64>) -> Span {
        span(Subject::Pipeline, cause, start, end)
    }

    fn shape(g: &[Gap]) -> Vec<(i64, i64, &'static str)> {
        g.iter()
            .map(|g| {
                (
                    g.start.timestamp() - 1_800_000_000,
                    g.end.timestamp() - 1_800_000_000,
                    g.cause.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn overlapping_causes_split_the_interval_the_most_specific_naming_each_part() {
        let s = [
            all(Cause::DetectionDown, 10, Some(40)),
            cam(Cause::CameraOffline, 20, Some(30)),
            all(Cause::WatchpostDown, 35, Some(50)),
        ];
        let refs: Vec<&Span> = s.iter().collect();
        let g = gaps(&refs, at(0), at(100), Duration::zero());
        assert_eq!(
            shape(&g),
            [
                (10, 20, "detection_down"),
                (20, 30, "camera_offline"),
                (30, 40, "detection_down"),
                (40, 50, "watchpost_down"),
            ]
        );
        let total: f64 = g.iter().map(Gap::seconds).sum();
        assert_eq!(total, 40.0);
        assert_eq!(covered(&refs, at(0), at(100)), Duration::seconds(40));
    }

    #[test]
    fn an_open_span_ends_at_to_and_spans_outside_the_window_are_cut() {
        let s = [
            cam(Cause::CameraFrozen, -50, Some(5)),
            all(Cause::WatcherDown, 90, None),
        ];
        let refs: Vec<&Span> = s.iter().collect();
        let g = gaps(&refs, at(0), at(100), Duration::zero());
        assert_eq!(
            shape(&g),
            [(0, 5, "camera_frozen"), (90, 100, "watcher_down")]
        );
    }

    #[test]
    fn the_same_cause_recorded_twice_by_two_instances_is_one_gap() {
        let s = [
            all(Cause::DetectionDown, 10, Some(20)),
            all(Cause::DetectionDown, 11, Some(21)),
        ];
        let refs: Vec<&Span> = s.iter().collect();
        let g = gaps(&refs, at(0), at(100), Duration::zero());
        assert_eq!(shape(&g), [(10, 21, "detection_down")]);
        assert_eq!(covered(&refs, at(0), at(100)), Duration::seconds(11));
    }

    #[test]
    fn short_gaps_join_a_neighbour_of_their_cause_only() {
        let s = [
            all(Cause::DetectionDown, 10, Some(20)),
            all(Cause::DetectionDown, 22, Some(30)),
            all(Cause::AnalysisDown, 31, Some(32)),
            all(Cause::DetectionDown, 60, Some(70)),
        ];
        let refs: Vec<&Span> = s.iter().collect();
        let min = Duration::seconds(5);
        let g = gaps(&refs, at(0), at(100), min);
        assert_eq!(
            shape(&g),
            [
                (10, 30, "detection_down"),
                (31, 32, "analysis_down"),
                (60, 70, "detection_down"),
            ],
            "the watched 2 s between two detection gaps joined; the short analysis gap kept"
        );
        assert_eq!(
            shape(&gaps(&refs, at(0), at(100), Duration::zero())).len(),
            4
        );
    }

    #[test]
    fn maintenance_names_the_time_whatever_else_held() {
        let s = [
            cam(Cause::CameraOffline, 10, Some(50)),
            cam(Cause::Maintenance, 20, Some(40)),
        ];
        let refs: Vec<&Span> = s.iter().collect();
        let g = gaps(&refs, at(0), at(100), Duration::zero());
        assert_eq!(
            shape(&g),
            [
                (10, 20, "camera_offline"),
                (20, 40, "maintenance"),
                (40, 50, "camera_offline"),
            ]
        );
    }

    #[test]
    fn nothing_recorded_is_no_gap() {
        assert!(gaps(&[], at(0), at(100), Duration::zero()).is_empty());
    }
}
