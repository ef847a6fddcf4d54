//! The copies of windows and snoozes an Alertmanager should hold (pure): one silence
//! per occurrence that holds now or starts within a day, scoped to watchpost's own
//! alerts (`generator="watchpost"`) and to the window's scope through the `source`
//! label. Each copy carries a tag in its comment (`[watchpost-window:<id>:<start>:<end>]`),
//! so any instance can tell, from what the Alertmanager lists, which copies are
//! missing and which belong to a window that ended early or was removed.

use chrono::{DateTime, Duration, Utc};

use super::window::{Scope, Window};

/// How far ahead the next occurrence of a window is copied (so that an Alertmanager
/// holds it even if watchpost is down when it starts).
pub const AHEAD: Duration = Duration::days(1);

/// The prefix of the tag in a copy's comment.
const TAG: &str = "[watchpost-window:";

/// One label matcher of a silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatch {
    pub name: String,
    pub value: String,
    /// `value` is a regular expression (RE2, anchored by Alertmanager).
    pub regex: bool,
}

impl LabelMatch {
    pub fn equal(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            regex: false,
        }
    }
}

/// One silence an Alertmanager should hold for a window's occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct Copy {
    /// Says which window and which occurrence; the same on every instance.
    pub tag: String,
    /// The scope's matchers (the sender adds `generator="watchpost"`).
    pub matchers: Vec<LabelMatch>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// The window's comment and its tag.
    pub comment: String,
}

/// The tag a copy's comment carries, if it is one of these copies.
pub fn tag_of(comment: &str) -> Option<&str> {
    let at = comment.rfind(TAG)?;
    let rest = &comment[at..];
    let end = rest.find(']')?;
    Some(&rest[..=end])
}

/// `text` as a literal inside an RE2 expression.
fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Scope {
    /// The matchers on the `source` label that pick this scope's alerts
    /// (`members`: the cameras of a group), as [`Scope::covers`] picks them.
    pub fn label_matchers(&self, members: &[String]) -> Vec<LabelMatch> {
        let source = |value: String, regex: bool| {
            vec![LabelMatch {
                name: "source".into(),
                value,
                regex,
            }]
        };
        match self {
            Self::Everything => Vec::new(),
            Self::Camera(id) => source(format!("camera:{id}"), false),
            Self::CameraGroup(g) => {
                let group = format!("cause:camera_group:{}", literal(g));
                if members.is_empty() {
                    return source(group, true);
                }
                let cameras: Vec<String> = members.iter().map(|c| literal(c)).collect();
                source(format!("camera:({})|{group}", cameras.join("|")), true)
            }
            Self::Dependency(d) => source(format!("(ai:|breaker:)?{}", literal(d)), true),
        }
    }
}

/// The copies `windows` need at `now`: the occurrence that holds, or else the next
/// one when it starts within [`AHEAD`]. `members` names a group's cameras.
pub fn copies<'a>(
    windows: impl Iterator<Item = &'a Window>,
    now: DateTime<Utc>,
    members: impl Fn(&str) -> Vec<String>,
) -> Vec<Copy> {
    windows
        .filter_map(|w| {
            let (start, end) = w
                .when
                .active_at(now)
                .or_else(|| w.when.next_after(now).filter(|(s, _)| *s - now <= AHEAD))?;
            let group = match &w.scope {
                Scope::CameraGroup(g) => members(g),
                _ => Vec::new(),
            };
            let tag = format!("{TAG}{}:{}:{}]", w.id, start.timestamp(), end.timestamp());
            let what = if w.comment.trim().is_empty() {
                format!("{} of {} in watchpost", w.kind.as_str(), w.scope)
            } else {
                w.comment.clone()
            };
            Some(Copy {
                matchers: w.scope.label_matchers(&group),
                starts_at: start,
                ends_at: end,
                comment: format!("{what} {tag}"),
                tag,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quiet::{When, WindowKind};

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("in range")
    }

    fn window(id: &str, scope: Scope, start: i64, end: i64) -> Window {
        Window {
            id: id.into(),
            kind: WindowKind::Snooze,
            scope,
            when: When::Once {
                starts_at: at(start),
                ends_at: at(end),
            },
            comment: String::new(),
            created_at: at(0),
            from_config: false,
        }
    }

    #[test]
    fn each_scope_picks_the_sources_it_covers() {
        assert!(Scope::Everything.label_matchers(&[]).is_empty());
        assert_eq!(
            Scope::Camera("porch".into()).label_matchers(&[]),
            vec![LabelMatch::equal("source", "camera:porch")]
        );
        let group = Scope::CameraGroup("front.door".into())
            .label_matchers(&["porch".into(), "gate".into()]);
        assert_eq!(
            group[0].value,
            r"camera:(porch|gate)|cause:camera_group:front\.door"
        );
        assert!(group[0].regex);
        assert_eq!(
            Scope::Dependency("yolo26".into()).label_matchers(&[])[0].value,
            "(ai:|breaker:)?yolo26"
        );
    }

    #[test]
    fn an_occurrence_is_copied_while_it_holds_or_within_a_day_of_its_start() {
        let now = at(1000);
        let windows = [
            window("now", Scope::Everything, 900, 2000),
            window("soon", Scope::Everything, 1000 + 3600, 1000 + 7200),
            window(
                "later",
                Scope::Everything,
                1000 + 2 * 86_400,
                1000 + 3 * 86_400,
            ),
            window("over", Scope::Everything, 100, 1000),
        ];
        let tags: Vec<String> = copies(windows.iter(), now, |_| Vec::new())
            .into_iter()
            .map(|c| c.tag)
            .collect();
        assert_eq!(tags.len(), 2, "{tags:?}");
        assert!(tags[0].starts_with("[watchpost-window:now:"));
        assert!(tags[1].starts_with("[watchpost-window:soon:"));
    }

    #[test]
    fn the_tag_is_read_back_from_the_comment() {
        let w = window("abc", Scope::Camera("porch".into()), 900, 2000);
        let c = &copies(std::iter::once(&w), at(1000), |_| Vec::new())[0];
        assert!(c
            .comment
            .starts_with("snooze of camera porch in watchpost "));
        assert_eq!(tag_of(&c.comment), Some(c.tag.as_str()));
        assert_eq!(tag_of("made by hand"), None);
    }
}
