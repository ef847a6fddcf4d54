//! Camera images for tests: unique real PNGs of a chosen size, written where the
//! watcher looks.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static SEQ: AtomicU64 = AtomicU64::new(1);

/// A unique image of `len` bytes: a real PNG (16 × 12 pixels of noise, so a
/// thumbnail can be made of it) padded to `len` with a private ancillary chunk that
/// decoders skip.
pub fn image_bytes(len: usize) -> Vec<u8> {
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let pixels = image::RgbImage::from_fn(16, 12, |_, _| {
        let v = next().to_le_bytes();
        image::Rgb([v[0], v[1], v[2]])
    });
    padded_png(&pixels, len, n)
}

/// `pixels` as a PNG of exactly `len` bytes (when it fits), padded with a private
/// ancillary chunk of filler made from `seed`, which decoders skip.
pub fn padded_png(pixels: &image::RgbImage, len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut png = std::io::Cursor::new(Vec::new());
    pixels
        .write_to(&mut png, image::ImageFormat::Png)
        .expect("encode PNG");
    let mut png = png.into_inner();
    // IEND is the last 12 bytes: the padding chunk goes before it.
    let iend = png.split_off(png.len() - 12);
    let room = len.saturating_sub(png.len() + iend.len() + 12);
    let mut chunk = b"wpAd".to_vec();
    while chunk.len() < 4 + room {
        chunk.extend_from_slice(&next().to_le_bytes());
    }
    chunk.truncate(4 + room);
    png.extend_from_slice(&(room as u32).to_be_bytes());
    png.extend_from_slice(&chunk);
    png.extend_from_slice(&crc32(&chunk).to_be_bytes());
    png.extend_from_slice(&iend);
    png
}

/// CRC-32 (ISO-HDLC), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

pub fn write_image(root: &Path, camera: &str, name: &str) -> PathBuf {
    let dir = root.join(camera);
    std::fs::create_dir_all(&dir).expect("camera dir");
    let path = dir.join(name);
    std::fs::write(&path, image_bytes(12_000)).expect("write image");
    path
}
