//! A volume's size and use (`statvfs`; blocking).

use std::path::Path;

/// The volume the disk figures are about: the camera folder's file system.
pub const CAMERA_ROOT: &str = "camera_root";

/// `(used, total)` bytes of the file system holding `dir` (or its nearest existing
/// ancestor).
pub fn disk_usage(dir: &Path) -> Option<(f64, f64)> {
    use std::os::unix::ffi::OsStrExt;
    let existing = dir.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero `statvfs` is a valid value to be overwritten by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a writable struct of the right type.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = st.f_frsize as f64;
    let total = st.f_blocks as f64 * frsize;
    let free = st.f_bfree as f64 * frsize;
    Some((total - free, total))
}
