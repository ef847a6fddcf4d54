//! The camera folder as untrusted territory. Cameras, and whoever can reach the share
//! they upload to, write there, so every name and every file in it is input.
//!
//! - A file is opened once, walking from a handle of the root one component at a time
//!   with `O_NOFOLLOW`: a symlink at any level below the root is refused, so nothing
//!   outside the root is ever read, whatever is swapped in between two calls.
//! - The open is non-blocking (a FIFO cannot hang it) and the descriptor is checked to
//!   be a regular file of at most the size limit before a byte is read. Hashing and
//!   uploading read from that same descriptor.
//! - Names must be valid UTF-8 without control characters: they become queue items,
//!   database rows and log fields, and two distinct names must never become one.
//! - Deleting is `unlinkat` relative to the parent's handle, reached the same way, never
//!   a re-resolved path.
//!
//! Everything here blocks: callers run it on the blocking pool, bounded in time.

use sha2::{Digest, Sha256};
use std::ffi::CString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::time::{Duration, SystemTime};

use crate::names::Label;

/// Bound on reading one image from the camera folder (a hung share must not hold the
/// worker: the read is abandoned and the item retried).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a camera file was refused. All but `Missing` and `Io` are permanent.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("not below the camera root")]
    Outside,
    #[error("the name is not valid UTF-8 or holds control characters")]
    BadName,
    #[error("a symbolic link (symlinks are never followed in the camera folder)")]
    Symlink,
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("{size} bytes, above the limit of {max}")]
    TooLarge { size: u64, max: u64 },
    #[error("the file is gone")]
    Missing,
    #[error("permission denied")]
    Unreadable,
    #[error("{0}")]
    Io(std::io::Error),
}

/// The closed set of refusal reasons, for metrics and dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Outside,
    BadName,
    Symlink,
    NotRegular,
    TooLarge,
    Unreadable,
}

impl Label for Refusal {
    fn label(self) -> &'static str {
        match self {
            Self::Outside => "outside_root",
            Self::BadName => "bad_name",
            Self::Symlink => "symlink",
            Self::NotRegular => "not_regular",
            Self::TooLarge => "too_large",
            Self::Unreadable => "unreadable",
        }
    }
    fn all() -> &'static [Self] {
        &[
            Self::Outside,
            Self::BadName,
            Self::Symlink,
            Self::NotRegular,
            Self::TooLarge,
            Self::Unreadable,
        ]
    }
}

impl IntakeError {
    /// The permanent reason, or `None` for a file that is gone or a passing I/O error.
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Self::Outside => Some(Refusal::Outside),
            Self::BadName => Some(Refusal::BadName),
            Self::Symlink => Some(Refusal::Symlink),
            Self::NotRegular(_) => Some(Refusal::NotRegular),
            Self::TooLarge { .. } => Some(Refusal::TooLarge),
            Self::Unreadable => Some(Refusal::Unreadable),
            Self::Missing | Self::Io(_) => None,
        }
    }

    fn from_errno(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ELOOP) => Self::Symlink,
            Some(libc::ENOTDIR) => Self::NotRegular("a path component is not a directory"),
            Some(libc::ENOENT) => Self::Missing,
            Some(libc::EACCES) | Some(libc::EPERM) => Self::Unreadable,
            _ => Self::Io(e),
        }
    }
}

/// Is `name` acceptable as one component of a camera path?
pub fn is_clean_name(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|s| !s.is_empty() && !s.chars().any(char::is_control))
}

/// `path` relative to `root`, as clean normal components.
fn components<'a>(root: &Path, path: &'a Path) -> Result<Vec<&'a std::ffi::OsStr>, IntakeError> {
    let rel = path.strip_prefix(root).map_err(|_| IntakeError::Outside)?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) if is_clean_name(n) => parts.push(n),
            Component::Normal(_) => return Err(IntakeError::BadName),
            _ => return Err(IntakeError::Outside),
        }
    }
    if parts.is_empty() {
        return Err(IntakeError::Outside);
    }
    Ok(parts)
}

fn cstring(name: &std::ffi::OsStr) -> Result<CString, IntakeError> {
    CString::new(name.as_bytes()).map_err(|_| IntakeError::BadName)
}

fn openat(
    dir: &OwnedFd,
    name: &std::ffi::OsStr,
    flags: libc::c_int,
) -> Result<OwnedFd, IntakeError> {
    let c = cstring(name)?;
    // SAFETY: `dir` is an open descriptor we own, `c` a NUL-terminated string that
    // outlives the call; the returned descriptor is owned by the `OwnedFd`.
    let fd = unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(IntakeError::from_errno(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by a successful `openat` and is owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Directories on the way to a file are opened only to be walked (`O_PATH`): no read
/// access is needed, and such an open raises no inotify event, so reading an image
/// does not wake the watcher's observer for each folder above it.
const DIR_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY;

/// The configured root directory (a symlink as the root itself is the operator's
/// choice and is followed; nothing below it is).
fn open_root(root: &Path) -> Result<OwnedFd, IntakeError> {
    let c = CString::new(root.as_os_str().as_bytes()).map_err(|_| IntakeError::BadName)?;
    // SAFETY: as in `openat`.
    let fd = unsafe { libc::open(c.as_ptr(), DIR_FLAGS | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(IntakeError::from_errno(std::io::Error::last_os_error()));
    }
    // SAFETY: as in `openat`.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Is `name` in `dir` a symlink (without following it)?
fn is_symlink_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> bool {
    let Ok(c) = cstring(name) else {
        return false;
    };
    // SAFETY: an all-zero `stat` is a valid value to be overwritten by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `dir` is an open descriptor, `c` is NUL-terminated, `st` is writable.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    rc == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFLNK
}

/// Open the directory holding `parts`' last component, walking without symlinks.
fn open_parent(root: &Path, parts: &[&std::ffi::OsStr]) -> Result<OwnedFd, IntakeError> {
    let mut dir = open_root(root)?;
    for part in &parts[..parts.len() - 1] {
        dir = match openat(&dir, part, DIR_FLAGS | libc::O_NOFOLLOW) {
            Ok(next) => next,
            // With O_DIRECTORY a symlink answers ENOTDIR: tell the two apart.
            Err(IntakeError::NotRegular(_)) if is_symlink_at(&dir, part) => {
                return Err(IntakeError::Symlink)
            }
            Err(e) => return Err(e),
        };
    }
    Ok(dir)
}

/// A camera file opened for reading: a regular file within the size limit.
pub struct ImageFile {
    file: File,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// Open `path` (below `root`) safely; see the module docs.
pub fn open_image(root: &Path, path: &Path, max_bytes: u64) -> Result<ImageFile, IntakeError> {
    let parts = components(root, path)?;
    let parent = open_parent(root, &parts)?;
    let name = parts[parts.len() - 1];
    let fd = openat(
        &parent,
        name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
    )?;
    let file = File::from(fd);
    let meta = file.metadata().map_err(IntakeError::Io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        use std::os::unix::fs::FileTypeExt;
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a file"
        };
        return Err(IntakeError::NotRegular(what));
    }
    if meta.len() > max_bytes {
        return Err(IntakeError::TooLarge {
            size: meta.len(),
            max: max_bytes,
        });
    }
    Ok(ImageFile {
        file,
        size: meta.len(),
        modified: meta.modified().ok(),
    })
}

impl ImageFile {
    /// Every byte (at most the size seen at open: a file that grows is read as it was).
    pub fn read_all(self) -> Result<Vec<u8>, IntakeError> {
        let mut buf = Vec::with_capacity(usize::try_from(self.size).unwrap_or(0));
        self.file
            .take(self.size)
            .read_to_end(&mut buf)
            .map_err(IntakeError::Io)?;
        Ok(buf)
    }

    /// The SHA-256 of the bytes [`ImageFile::read_all`] would return.
    pub fn sha256(self) -> Result<String, IntakeError> {
        let mut hasher = Sha256::new();
        std::io::copy(&mut self.file.take(self.size), &mut hasher).map_err(IntakeError::Io)?;
        Ok(format!("{:x}", hasher.finalize()))
    }
}

/// `f` of each item, in order, for a trip off the async threads that reads several
/// files: no new item is started once `trip` has passed since the first, so the
/// result may be shorter than `items` (the rest wait for the next trip). Blocking.
pub fn within_trip<I, T>(
    items: impl IntoIterator<Item = I>,
    trip: Duration,
    mut f: impl FnMut(I) -> T,
) -> Vec<T> {
    let started = std::time::Instant::now();
    let mut out = Vec::new();
    for item in items {
        if !out.is_empty() && started.elapsed() >= trip {
            break;
        }
        out.push(f(item));
    }
    out
}

/// SHA-256 of bytes already read.
pub fn sha256_of(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Delete the regular file `path` (below `root`) without following any symlink:
/// `unlinkat` relative to its parent directory's handle. `Ok(false)` when it was gone.
pub fn remove_file(root: &Path, path: &Path) -> Result<bool, IntakeError> {
    let parts = components(root, path)?;
    let parent = match open_parent(root, &parts) {
        Err(IntakeError::Missing) => return Ok(false),
        other => other?,
    };
    let c = cstring(parts[parts.len() - 1])?;
    // SAFETY: `parent` is an open directory descriptor we own, `c` is NUL-terminated.
    // Flag 0 removes a non-directory entry itself (a symlink is removed, not followed).
    let rc = unsafe { libc::unlinkat(parent.as_raw_fd(), c.as_ptr(), 0) };
    if rc < 0 {
        return match IntakeError::from_errno(std::io::Error::last_os_error()) {
            IntakeError::Missing => Ok(false),
            e => Err(e),
        };
    }
    Ok(true)
}

/// The device and inode of a directory, to notice that the root was replaced.
pub fn dir_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_dir)
        .map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::PathBuf;

    fn setup() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().join("cams");
        std::fs::create_dir_all(root.join("front")).expect("mkdir");
        (dir, root)
    }

    #[test]
    fn a_regular_file_is_read_and_hashed_from_its_descriptor() {
        let (_d, root) = setup();
        let p = root.join("front/a.jpg");
        std::fs::write(&p, b"image bytes").expect("write");
        let f = open_image(&root, &p, 1024).expect("open");
        assert_eq!(f.size, 11);
        assert_eq!(f.read_all().expect("read"), b"image bytes");
        let h = open_image(&root, &p, 1024)
            .expect("open")
            .sha256()
            .expect("hash");
        assert_eq!(h, sha256_of(b"image bytes"));
    }

    #[test]
    fn symlinks_are_refused_at_every_level_and_nothing_outside_is_read() {
        let (d, root) = setup();
        let secret = d.path().join("secret.bin");
        std::fs::write(&secret, b"secret").expect("write");
        symlink(&secret, root.join("front/leak.jpg")).expect("symlink");
        assert!(matches!(
            open_image(&root, &root.join("front/leak.jpg"), 1024),
            Err(IntakeError::Symlink)
        ));
        let outside = d.path().join("outside");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join("x.png"), b"x").expect("write");
        symlink(&outside, root.join("front/linked")).expect("symlink");
        assert!(matches!(
            open_image(&root, &root.join("front/linked/x.png"), 1024),
            Err(IntakeError::Symlink)
        ));
        symlink("/dev/zero", root.join("front/zero.jpg")).expect("symlink");
        assert!(matches!(
            open_image(&root, &root.join("front/zero.jpg"), 1024),
            Err(IntakeError::Symlink)
        ));
        assert!(matches!(
            open_image(&root, &d.path().join("secret.bin"), 1024),
            Err(IntakeError::Outside)
        ));
        assert!(matches!(
            open_image(&root, &root.join("front/../../secret.bin"), 1024),
            Err(IntakeError::Outside)
        ));
    }

    #[test]
    fn directories_fifos_and_oversized_files_are_refused_before_reading() {
        let (_d, root) = setup();
        std::fs::create_dir_all(root.join("front/dir.jpg")).expect("mkdir");
        assert!(matches!(
            open_image(&root, &root.join("front/dir.jpg"), 1024),
            Err(IntakeError::NotRegular("a directory"))
        ));
        let fifo = root.join("front/pipe.jpg");
        let c = CString::new(fifo.as_os_str().as_bytes()).expect("cstring");
        // SAFETY: a NUL-terminated path; creating a FIFO has no memory effects.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            open_image(&root, &fifo, 1024),
            Err(IntakeError::NotRegular("a FIFO"))
        ));
        let big = File::create(root.join("front/huge.jpg")).expect("create");
        big.set_len(200 * 1024 * 1024 * 1024)
            .expect("sparse 200 GB");
        assert!(matches!(
            open_image(&root, &root.join("front/huge.jpg"), 50 << 20),
            Err(IntakeError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_with_control_characters_or_invalid_utf8_are_refused() {
        let (_d, root) = setup();
        let bad = [
            root.join("front")
                .join(std::ffi::OsStr::from_bytes(b"a_\xff.jpg")),
            root.join("Evil\nFORGED").join("a.jpg"),
        ];
        for p in bad {
            assert!(
                matches!(open_image(&root, &p, 1024), Err(IntakeError::BadName)),
                "{p:?}"
            );
        }
    }

    #[test]
    fn removal_never_follows_a_swapped_in_symlink() {
        let (d, root) = setup();
        let victim_dir = d.path().join("victim");
        std::fs::create_dir_all(&victim_dir).expect("mkdir");
        std::fs::write(victim_dir.join("old.png"), b"keep me").expect("write");
        // `front` replaced by a symlink to a directory outside the root.
        std::fs::remove_dir_all(root.join("front")).expect("rm");
        symlink(&victim_dir, root.join("front")).expect("symlink");
        assert!(matches!(
            remove_file(&root, &root.join("front/old.png")),
            Err(IntakeError::Symlink)
        ));
        assert!(victim_dir.join("old.png").exists());
        std::fs::remove_file(root.join("front")).expect("rm link");
        std::fs::create_dir_all(root.join("front")).expect("mkdir");
        std::fs::write(root.join("front/old.png"), b"x").expect("write");
        assert!(remove_file(&root, &root.join("front/old.png")).expect("removed"));
        assert!(!remove_file(&root, &root.join("front/old.png")).expect("gone"));
    }
}
