//! What YOLO26 finds in an image, as the pipeline keeps it and as the service sends it.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BoundingBox {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Detection {
    pub object_type: String,
    pub confidence: f64,
    pub bbox: BoundingBox,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DetectionResult {
    /// Only detections at or above `detection_confidence_threshold`.
    pub detections: Vec<Detection>,
    pub inference_time_ms: f64,
    pub image_width: u32,
    pub image_height: u32,
}

#[derive(Deserialize)]
pub struct WireDetection {
    pub class: String,
    pub confidence: f64,
    pub bbox: BoundingBox,
}

#[derive(Deserialize)]
pub struct WireDetectResponse {
    pub detections: Vec<WireDetection>,
    #[serde(default)]
    pub inference_time_ms: f64,
    #[serde(default)]
    pub image_width: u32,
    #[serde(default)]
    pub image_height: u32,
}
