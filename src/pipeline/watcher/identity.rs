//! The camera root's identity, which decides who may take a detection item.
//!
//! An item names a picture below a camera root; only an instance that sees that root
//! can read it. Instances whose roots hold the same identity see the same files (two
//! processes on one machine, or hosts mounting one network share) and share one
//! detection stream; an instance whose root is its own has a stream of its own, so
//! no host takes an item whose picture is on another host's disk.
//!
//! The identity is a marker file at the top of the root, `.watchpost-root-id`, made
//! by the first instance that finds none (created exclusively, so two instances
//! starting together agree). The root is a share other devices write to: the marker
//! is opened without following a symlink, must be a regular file of at most 64
//! bytes, and must read as an identity (hex digits and '-'); anything else is not
//! trusted, and the instance keeps to a stream of its own, derived from its host
//! name and root path, so it stays the same across its restarts. Files at the top of
//! the root are never taken as pictures (a picture is in a camera folder).

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The marker's name at the top of the camera root.
pub const MARKER: &str = ".watchpost-root-id";
/// The most a marker may hold.
const MAX_BYTES: u64 = 64;

/// Whose detection stream an instance reads, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootIdentity {
    /// The marker's identity: shared with every instance that sees this root.
    Shared(String),
    /// This instance's own (`local-` and a digest of its host name and root path),
    /// with the reason the marker could not be used.
    Own { id: String, why: String },
}

impl RootIdentity {
    /// The detection stream's scope.
    pub fn scope(&self) -> &str {
        match self {
            Self::Shared(id) | Self::Own { id, .. } => id,
        }
    }
}

fn valid(text: &str) -> bool {
    (8..=64).contains(&text.len()) && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Read the marker without following a symlink: a regular file of at most
/// [`MAX_BYTES`] holding an identity. `Ok(None)` when there is none.
fn read(root: &Path) -> Result<Option<String>, String> {
    let path = root.join(MARKER);
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("the marker cannot be opened ({e})")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("the marker cannot be read ({e})"))?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err("the marker is not a small regular file".into());
    }
    let mut text = String::new();
    file.take(MAX_BYTES)
        .read_to_string(&mut text)
        .map_err(|_| "the marker is not text".to_string())?;
    let text = text.trim();
    if valid(text) {
        Ok(Some(text.to_string()))
    } else {
        Err("the marker does not hold an identity".into())
    }
}

/// Make the marker, unless another instance made it first (then read theirs). It
/// is written whole to a file of its own and then linked into place, so another
/// instance never reads a marker half written.
fn create(root: &Path) -> Result<String, String> {
    let id = uuid::Uuid::new_v4().to_string();
    let draft = root.join(format!("{MARKER}.{id}"));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(&draft)
        .and_then(|mut f| {
            f.write_all(id.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&draft);
        return Err(format!("the marker cannot be made ({e})"));
    }
    let linked = std::fs::hard_link(&draft, root.join(MARKER));
    let _ = std::fs::remove_file(&draft);
    match linked {
        Ok(()) => Ok(id),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(root)?.ok_or_else(|| "the marker vanished".to_string())
        }
        Err(e) => Err(format!("the marker cannot be made ({e})")),
    }
}

/// The identity of `root` for an instance on `host`. A root that does not exist yet
/// is made first, as the watcher would.
pub fn root_identity(root: &Path, host: &str) -> RootIdentity {
    if !root.exists() {
        let _ = std::fs::create_dir_all(root);
    }
    let found = if root.is_dir() {
        read(root).and_then(|found| match found {
            Some(id) => Ok(id),
            None => create(root),
        })
    } else {
        Err("the camera root is not a directory".into())
    };
    match found {
        Ok(id) => RootIdentity::Shared(id),
        Err(why) => {
            let digest = crate::pipeline::camera_fs::sha256_of(
                format!("{host}\n{}", root.display()).as_bytes(),
            );
            RootIdentity::Own {
                id: format!("local-{}", &digest[..16]),
                why,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_instance_makes_the_marker_and_the_next_reads_it() {
        let dir = tempfile::tempdir().expect("dir");
        let first = root_identity(dir.path(), "a");
        let RootIdentity::Shared(id) = &first else {
            panic!("{first:?}");
        };
        assert_eq!(
            root_identity(dir.path(), "b"),
            first,
            "another host sees the same"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(MARKER)).expect("marker"),
            *id
        );
    }

    #[test]
    fn two_roots_are_two_identities() {
        let (a, b) = (
            tempfile::tempdir().expect("a"),
            tempfile::tempdir().expect("b"),
        );
        assert_ne!(
            root_identity(a.path(), "h").scope(),
            root_identity(b.path(), "h").scope()
        );
    }

    #[test]
    fn instances_starting_together_agree() {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().to_path_buf();
        let all: Vec<RootIdentity> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let root = root.clone();
                    s.spawn(move || root_identity(&root, &format!("h{i}")))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        assert!(all
            .iter()
            .all(|i| i == &all[0] && matches!(i, RootIdentity::Shared(_))));
    }

    #[test]
    fn a_hostile_marker_is_not_trusted_and_the_instance_keeps_to_its_own() {
        let dir = tempfile::tempdir().expect("dir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::write(outside.path().join("id"), "0123456789abcdef").expect("write");
        std::os::unix::fs::symlink(outside.path().join("id"), dir.path().join(MARKER))
            .expect("symlink");
        let own = root_identity(dir.path(), "h");
        assert!(matches!(own, RootIdentity::Own { .. }), "{own:?}");
        assert!(own.scope().starts_with("local-"));
        assert_eq!(
            own,
            root_identity(dir.path(), "h"),
            "the same across restarts"
        );
        assert_ne!(own.scope(), root_identity(dir.path(), "other").scope());

        for bad in ["", "not an id; DROP", &"a".repeat(65), "\u{1b}[31mred"] {
            std::fs::remove_file(dir.path().join(MARKER)).expect("rm");
            std::fs::write(dir.path().join(MARKER), bad).expect("write");
            assert!(
                matches!(root_identity(dir.path(), "h"), RootIdentity::Own { .. }),
                "{bad:?}"
            );
        }
        // Not a directory at all.
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(matches!(
            root_identity(&file, "h"),
            RootIdentity::Own { .. }
        ));
    }
}
