//! Thumbnails of camera images, for the status page. An image is read the way the
//! pipeline reads one (`camera_fs`: below the root only, never through a symlink, a
//! regular file within `file_watcher.max_file_bytes`), decoded within fixed limits (a
//! small file that declares a huge picture is refused, not allocated), scaled to fit
//! [`SIDE`] pixels and encoded as JPEG. Blocking: callers run it on the blocking pool,
//! bounded in time, a few at once.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use super::camera_fs::{self, IntakeError};

/// The longest side of a thumbnail, in pixels.
pub const SIDE: u32 = 320;
/// The largest picture decoded (either side), and the most memory one decode may take.
const MAX_SIDE: u32 = 10_000;
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// Why there is no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbnailError {
    #[error("No image there (it may have been cleaned up)")]
    Missing,
    #[error("Not an image file below the camera root: {0}")]
    Refused(String),
    #[error("The file cannot be decoded as a JPEG or PNG image: {0}")]
    Undecodable(String),
    #[error("The image cannot be read now: {0}")]
    Unavailable(String),
}

impl From<IntakeError> for ThumbnailError {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::Missing => Self::Missing,
            IntakeError::Io(e) => Self::Unavailable(e.to_string()),
            other => Self::Refused(other.to_string()),
        }
    }
}

/// Thumbnails made at once: each holds a decoded picture (tens of MiB at most) and a
/// blocking thread.
const AT_ONCE: usize = 2;

/// The thumbnails of one camera root, a few at a time, each bounded in time.
pub struct Thumbnails {
    root: PathBuf,
    max_bytes: u64,
    slots: tokio::sync::Semaphore,
}

impl Thumbnails {
    pub fn new(root: &Path, max_bytes: u64) -> Self {
        Self {
            root: root.to_path_buf(),
            max_bytes,
            slots: tokio::sync::Semaphore::new(AT_ONCE),
        }
    }

    /// The thumbnail of `path` (as the API lists image paths: under the camera root).
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, ThumbnailError> {
        let slot = tokio::time::timeout(camera_fs::READ_TIMEOUT, self.slots.acquire())
            .await
            .map_err(|_| ThumbnailError::Unavailable("too many thumbnails are being made".into()))?
            .map_err(|_| ThumbnailError::Unavailable("shutting down".into()))?;
        let (root, path, max) = (self.root.clone(), PathBuf::from(path), self.max_bytes);
        let made = tokio::time::timeout(
            camera_fs::READ_TIMEOUT,
            tokio::task::spawn_blocking(move || make(&root, &path, max)),
        )
        .await;
        drop(slot);
        match made {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(ThumbnailError::Unavailable(e.to_string())),
            Err(_) => Err(ThumbnailError::Unavailable("the read took too long".into())),
        }
    }
}

/// The thumbnail of the image at `path` (below `root`), as JPEG bytes.
pub fn make(root: &Path, path: &Path, max_bytes: u64) -> Result<Vec<u8>, ThumbnailError> {
    let bytes = camera_fs::open_image(root, path, max_bytes)?.read_all()?;
    let mut reader = image::ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| ThumbnailError::Undecodable(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let picture = reader
        .decode()
        .map_err(|e| ThumbnailError::Undecodable(e.to_string()))?;
    let small = picture.thumbnail(SIDE, SIDE).to_rgb8();
    let mut out = Cursor::new(Vec::new());
    small
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| ThumbnailError::Undecodable(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    #[test]
    fn an_image_below_the_root_is_scaled_down_to_a_jpeg() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("porch")).unwrap();
        let p = root.path().join("porch/a.png");
        std::fs::write(&p, png(1280, 720)).unwrap();
        let t = make(root.path(), &p, 10 << 20).unwrap();
        let back = image::load_from_memory(&t).unwrap();
        assert_eq!((back.width(), back.height()), (320, 180));
        assert_eq!(&t[..2], &[0xFF, 0xD8], "a JPEG");
    }

    #[test]
    fn outside_the_root_a_symlink_a_missing_file_and_a_non_image_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("porch")).unwrap();
        let secret = outside.path().join("secret.png");
        std::fs::write(&secret, png(10, 10)).unwrap();
        std::os::unix::fs::symlink(&secret, root.path().join("porch/link.png")).unwrap();
        std::fs::write(root.path().join("porch/notes.png"), b"not a picture").unwrap();
        let max = 10 << 20;
        assert!(matches!(
            make(root.path(), &secret, max),
            Err(ThumbnailError::Refused(_))
        ));
        assert!(matches!(
            make(
                root.path(),
                &root.path().join("porch/../../etc/passwd"),
                max
            ),
            Err(ThumbnailError::Refused(_))
        ));
        assert!(matches!(
            make(root.path(), &root.path().join("porch/link.png"), max),
            Err(ThumbnailError::Refused(_))
        ));
        assert!(matches!(
            make(root.path(), &root.path().join("porch/gone.png"), max),
            Err(ThumbnailError::Missing)
        ));
        assert!(matches!(
            make(root.path(), &root.path().join("porch/notes.png"), max),
            Err(ThumbnailError::Undecodable(_))
        ));
    }
}
