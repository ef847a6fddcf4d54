//! Chaos: a camera pipeline whose Redis keeps no data across restarts, whose watchpost
//! is SIGKILLed every few seconds and whose PostgreSQL restarts twice, while images
//! keep arriving. Every image is detected at least once (the design: an item is
//! acknowledged after its results are stored, so a kill in between sends it again;
//! the repeats are printed as a figure), and every detection ends up in exactly one event (PostgreSQL remembers batch membership; see
//! `src/pipeline/batch/recovery.rs`).

use crate::support::{eventually_for, write_image, Stack};
use std::time::{Duration, Instant};

const IMAGES: usize = 240;
const CAMERAS: [&str; 4] = ["gate", "yard", "porch", "drive"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_and_a_forgetful_redis_detect_every_image_at_least_once_and_leave_no_detection_without_an_event(
) {
    let mut stack = Stack::volatile(&[]);
    let mut wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");

    // 240 images over 40 s (the load's pace, not a wait for an outcome); watchpost
    // SIGKILLed every 6 s, Redis restarted empty every 10 s, PostgreSQL at 15 s and 30 s.
    let start = Instant::now();
    let (mut kills, mut redis_restarts, mut pg_restarts) = (0, 0, 0);
    let mut pace = tokio::time::interval(Duration::from_millis(40_000 / IMAGES as u64));
    let mut hashes = std::collections::BTreeMap::new();
    for i in 0..IMAGES {
        pace.tick().await;
        let path = write_image(&root, CAMERAS[i % CAMERAS.len()], &format!("img{i:03}.png"));
        hashes.insert(path.clone(), sha256_of(&path));
        let t = start.elapsed().as_secs_f64();
        if t >= 6.0 * f64::from(kills + 1) {
            let dir = wp.kill();
            wp = stack.start(dir);
            kills += 1;
        }
        if t >= 10.0 * f64::from(redis_restarts + 1) {
            stack.redis.stop();
            stack.redis.start_again();
            redis_restarts += 1;
        }
        if pg_restarts < 2 && t >= 15.0 * f64::from(pg_restarts + 1) {
            stack.pg.stop();
            stack.pg.start_again();
            pg_restarts += 1;
        }
    }
    assert!(kills >= 5 && redis_restarts >= 3 && pg_restarts == 2);

    // Settled: every image detected, every detection in exactly one event.
    eventually_for(
        Duration::from_secs(240),
        "every detection in exactly one event",
        || async {
            let images = stack.count("select count(distinct file_path) from detections");
            let detections = stack.count("select count(*) from detections");
            let not_once = stack.count(
                "select count(*) from detections d
             where (select count(*) from events e where d.id = any (e.detection_ids)) <> 1",
            );
            (images == IMAGES as u64 && detections > 0 && not_once == 0).then_some(())
        },
    )
    .await;
    // At least once, by design: a SIGKILL between an upload and its acknowledgement
    // sends that image to the detector again. Every image reached the detector (the
    // set of distinct uploads is the set of images), and how many uploads were
    // repeats is a figure, not a failure.
    let uploads = stack.ai.get("yolo26").uploads();
    let distinct: std::collections::BTreeSet<&String> = uploads.iter().collect();
    let written: std::collections::BTreeSet<String> = (0..IMAGES)
        .map(|i| {
            let path = root
                .join(CAMERAS[i % CAMERAS.len()])
                .join(format!("img{i:03}.png"));
            // Files of a judged image may be gone (cleanup): the hash was kept.
            hashes.get(&path).cloned().expect("hashed when written")
        })
        .collect();
    assert_eq!(
        distinct.len(),
        IMAGES,
        "every image uploaded to the detector, none missing"
    );
    assert!(
        distinct.iter().all(|h| written.contains(*h)),
        "only the written images were uploaded"
    );
    crate::support::figure(
        "chaos_repeat_uploads",
        (uploads.len() - distinct.len()) as f64,
        "uploads",
    );
    drop(wp);
}

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    format!(
        "{:x}",
        sha2::Sha256::digest(std::fs::read(path).expect("read image"))
    )
}

/// `redis-cli` on the stack's Redis.
fn redis_cli(stack: &Stack, args: &[&str]) -> String {
    let out = std::process::Command::new(crate::support::require("redis-cli", "redis-server"))
        .arg("-p")
        .arg(stack.redis.port.to_string())
        .args(args)
        .output()
        .expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A picture detected and stored, whose item was not acknowledged when watchpost
/// was SIGKILLed (it waited for Redis to add it to its batch): the item comes back
/// after the restart, and its stored detections are taken instead of asking the
/// detector again. Before, the picture was uploaded twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_stored_but_not_acknowledged_before_a_kill_is_not_sent_to_the_detector_again() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    crate::support::watching(&wp).await;
    let root = wp.dir.path().join("cameras");
    let yolo = stack.ai.get("yolo26");
    // The detector takes its time: Redis stops taking writes while it works.
    yolo.set_route_mode(
        "detect",
        crate::support::fake_ai::Mode::Slow(Duration::from_secs(2)),
    );
    write_image(&root, "porch", "a.png");
    crate::support::eventually("the picture at the detector", || async {
        (yolo
            .counters()
            .detect
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0)
        .then_some(())
    })
    .await;
    assert_eq!(
        redis_cli(&stack, &["CLIENT", "PAUSE", "60000", "WRITE"]),
        "OK"
    );
    // Stored in PostgreSQL; its batch (a Redis write) waits, so it is not acknowledged.
    eventually_for(Duration::from_secs(20), "the detections stored", || async {
        (stack.count("select count(*) from detections") > 0).then_some(())
    })
    .await;
    let dir = wp.kill();
    assert_eq!(redis_cli(&stack, &["CLIENT", "UNPAUSE"]), "OK");
    yolo.set_route_mode("detect", crate::support::fake_ai::Mode::Normal);
    let wp = stack.start(dir);
    eventually_for(
        Duration::from_secs(30),
        "the detection in its event",
        || async {
            (stack.count(
                "select count(*) from detections d where exists
             (select 1 from events e where d.id = any (e.detection_ids))",
            ) > 0
                && stack.count(
                    "select count(*) from detections d where not exists
             (select 1 from events e where d.id = any (e.detection_ids))",
                ) == 0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        yolo.uploads().len(),
        1,
        "the picture was sent to the detector again after it was stored"
    );
    drop(wp);
}
