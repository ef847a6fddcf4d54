//! Directory walks of the camera root (blocking; run on the blocking pool).

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Every file below `root` (for the catch-up scan) and every camera folder:
/// `(Some(file), None)` or `(None, Some(folder name))`.
pub fn scan(root: &Path) -> Vec<(Option<PathBuf>, Option<String>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    if dir == root {
                        out.push((None, Some(entry.file_name().to_string_lossy().to_string())));
                    }
                    stack.push(path);
                }
                Ok(t) if t.is_file() => out.push((Some(path), None)),
                _ => {}
            }
        }
    }
    out
}

pub fn hash_file(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}
