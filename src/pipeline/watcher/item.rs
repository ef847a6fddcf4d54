//! What the watcher hands to the detection queue, and the naming rules: which files
//! are images and how a camera folder becomes a camera id.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

const EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// One image handed to the detection queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DetectionItem {
    pub file_path: String,
    pub camera_id: String,
    pub file_hash: String,
    pub file_size: u64,
    pub seen_at: DateTime<Utc>,
}

/// `Front Door` → `front_door`: trim, lower-case, spaces and hyphens to `_`, other
/// non-word characters dropped.
pub fn normalize_camera_id(folder: &str) -> String {
    folder
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' | '-' => Some('_'),
            c if c.is_alphanumeric() || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// `.jpg`, `.jpeg` or `.png`, in any case.
pub fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camera_ids_are_normalised() {
        assert_eq!(normalize_camera_id("Front Door"), "front_door");
        assert_eq!(normalize_camera_id("  Back-Yard #2 "), "back_yard_2");
        assert_eq!(normalize_camera_id("garage"), "garage");
        assert_eq!(normalize_camera_id("!!!"), "");
    }

    #[test]
    fn only_images_by_extension_case_insensitively() {
        assert!(has_image_extension(Path::new("a/b.JPG")));
        assert!(has_image_extension(Path::new("a/b.jpeg")));
        assert!(has_image_extension(Path::new("a/b.Png")));
        assert!(!has_image_extension(Path::new("a/b.txt")));
        assert!(!has_image_extension(Path::new("a/jpg")));
    }
}
