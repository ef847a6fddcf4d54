//! A hostile or broken camera folder on the real binary (real Redis and PostgreSQL,
//! the fake AI server): each case uses a real file system object in a temp camera
//! root, and after each the watcher is running, later images are detected and the
//! process stays small.

use crate::support::fake_ai::Mode;
use crate::support::{
    client, eventually, image_bytes, json, metrics, wait_rows, write_image, Stack, Watchpost,
};
use serde_json::Value;
use sha2::Digest;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::sync::atomic::Ordering;
use std::time::Instant;

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", sha2::Sha256::digest(bytes))
}

async fn counted(wp: &Watchpost, result: &str, n: u64) {
    let line = format!("watchpost_watcher_files_total{{result=\"{result}\"}} {n}");
    eventually(&line.clone(), || {
        let line = line.clone();
        async move { metrics(wp).await.contains(&line).then_some(()) }
    })
    .await;
}

/// The watcher runs, a fresh image is detected, and every worker is running (the
/// resident memory is printed as a figure).
async fn still_healthy(stack: &Stack, wp: &Watchpost, detections: u64) {
    let p = json(format!("{}/api/system/pipeline", wp.url())).await;
    assert_eq!(p["file_watcher"]["running"], true, "{p}");
    write_image(
        &wp.dir.path().join("cameras"),
        "after",
        &format!("fresh{detections}.png"),
    );
    wait_rows(stack, "detections", detections).await;
    let status = json(format!("{}/api/system/supervisor", wp.url())).await;
    for w in status["workers"].as_array().expect("workers") {
        assert_eq!(w["status"], "running", "{w}");
    }
    crate::support::figure("hostile_folder_rss", wp.rss_kib() as f64 / 1024.0, "MiB");
}

async fn post(url: String) -> reqwest::Response {
    client().post(url).send().await.expect("POST")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sparse_file_above_the_limit_is_refused_unread() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let dir = wp.dir.path().join("cameras").join("front");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let huge = std::fs::File::create(dir.join("huge.jpg")).expect("create");
    huge.set_len(200 * 1024 * 1024 * 1024)
        .expect("truncate -s 200G");
    drop(huge);
    counted(&wp, "rejected_too_large", 1).await;
    still_healthy(&stack, &wp, 1).await;
    assert_eq!(
        stack
            .ai
            .get("yolo26")
            .counters()
            .detect
            .load(Ordering::SeqCst),
        1,
        "only the fresh image reached YOLO26"
    );
    assert!(
        json(format!(
            "{}/api/system/supervisor/restart-history",
            wp.url()
        ))
        .await["items"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "no worker crashed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_swapped_after_queueing_become_dead_letters_and_can_be_requeued_once_fixed() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    let stopped = post(format!(
        "{base}/api/system/supervisor/workers/detection_worker/stop"
    ))
    .await;
    assert_eq!(stopped.status().as_u16(), 200);
    let root = wp.dir.path().join("cameras");
    let names = ["to-dir.png", "to-fifo.png", "to-zero.png"];
    let originals: Vec<(std::path::PathBuf, Vec<u8>)> = names
        .iter()
        .map(|n| {
            let p = write_image(&root, "porch", n);
            let bytes = std::fs::read(&p).expect("read back");
            (p, bytes)
        })
        .collect();
    counted(&wp, "queued", 3).await;
    // Swap each queued path for something that is not an image file.
    let (dir_path, fifo_path, zero_path) = (&originals[0].0, &originals[1].0, &originals[2].0);
    std::fs::remove_file(dir_path).expect("rm");
    std::fs::create_dir(dir_path).expect("mkdir in its place");
    std::fs::remove_file(fifo_path).expect("rm");
    let c = std::ffi::CString::new(fifo_path.as_os_str().as_bytes()).expect("cstring");
    // SAFETY: a NUL-terminated path; mkfifo has no memory effects.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    std::fs::remove_file(zero_path).expect("rm");
    symlink("/dev/zero", zero_path).expect("symlink to /dev/zero");

    let started = post(format!(
        "{base}/api/system/supervisor/workers/detection_worker/start"
    ))
    .await;
    assert_eq!(started.status().as_u16(), 200);
    let p = eventually("three dead letters", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            (p["dead_letters"]["detection"] == 3).then_some(p)
        }
    })
    .await;
    assert_eq!(p["dead_letters"]["analysis"], 0);
    let m = metrics(&wp).await;
    assert!(m.contains(
        "watchpost_queue_dead_lettered_total{queue=\"detection\",reason=\"not_regular\"} 2"
    ));
    assert!(
        m.contains("watchpost_queue_dead_lettered_total{queue=\"detection\",reason=\"symlink\"} 1")
    );
    assert!(m.contains("watchpost_queue_dead_letters{queue=\"detection\"} 3"));
    assert_eq!(
        stack.rows("detections"),
        0,
        "nothing was detected from them"
    );
    still_healthy(&stack, &wp, 1).await;

    // The operator can see which files and why, oldest first, without redis-cli.
    let list = json(format!("{base}/api/system/pipeline/dead-letters/detection")).await;
    assert_eq!(list["total"], 3, "{list}");
    assert_eq!(list["count"], 3, "{list}");
    let mut seen: Vec<(String, String)> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| {
            assert!(d["deliveries"].as_u64() >= Some(1), "{d}");
            assert!(d["dead_lettered_at"].is_string(), "{d}");
            assert!(!d["detail"].as_str().unwrap_or_default().is_empty(), "{d}");
            (
                d["item"]["file_path"]
                    .as_str()
                    .expect("file_path")
                    .to_string(),
                d["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want: Vec<(String, String)> = [
        (dir_path, "not_regular"),
        (fifo_path, "not_regular"),
        (zero_path, "symlink"),
    ]
    .iter()
    .map(|(p, r)| (p.display().to_string(), r.to_string()))
    .collect();
    want.sort();
    assert_eq!(seen, want);
    let page = json(format!(
        "{base}/api/system/pipeline/dead-letters/detection?limit=2"
    ))
    .await;
    assert_eq!(
        (page["total"].clone(), page["count"].clone()),
        (3.into(), 2.into())
    );
    for (url, status) in [
        ("dead-letters/detection?limit=0", 400),
        ("dead-letters/detection?limit=101", 400),
        ("dead-letters/nope", 404),
        ("dead-letters/b%20d", 400),
    ] {
        let r = client()
            .get(format!("{base}/api/system/pipeline/{url}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), status, "{url}");
        let body: Value = r.json().await.expect("json");
        assert!(body["detail"].is_string(), "{url}: {body}");
    }
    let analysis = json(format!("{base}/api/system/pipeline/dead-letters/analysis")).await;
    assert_eq!(
        (analysis["total"].clone(), analysis["count"].clone()),
        (0.into(), 0.into())
    );

    // Fix the files (the same images back in place), then requeue.
    std::fs::remove_dir(dir_path).expect("rmdir");
    std::fs::remove_file(fifo_path).expect("rm fifo");
    std::fs::remove_file(zero_path).expect("rm link");
    for (path, bytes) in &originals {
        std::fs::write(path, bytes).expect("restore");
    }
    let requeued = post(format!(
        "{base}/api/system/pipeline/dead-letters/detection/requeue"
    ))
    .await;
    assert_eq!(requeued.status().as_u16(), 200);
    let body: Value = requeued.json().await.expect("json");
    assert_eq!(body["requeued"], 3, "{body}");
    wait_rows(&stack, "detections", 4).await;
    for (path, _) in &originals {
        assert_eq!(
            stack.count(&format!(
                "select count(*) from detections where file_path = '{}'",
                path.display()
            )),
            1,
            "{path:?} detected once"
        );
    }
    let unknown = post(format!(
        "{base}/api/system/pipeline/dead-letters/nope/requeue"
    ))
    .await;
    assert_eq!(unknown.status().as_u16(), 404);
    let bad = post(format!(
        "{base}/api/system/pipeline/dead-letters/b%20d/requeue"
    ))
    .await;
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_out_of_the_root_are_never_followed() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let outside = wp.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("tree")).expect("mkdir");
    let secret = image_bytes(20_000); // looks like an image, so it would be uploaded
    std::fs::write(outside.join("secret.bin"), &secret).expect("secret");
    let tree_image = image_bytes(20_000);
    std::fs::write(outside.join("tree").join("system.png"), &tree_image).expect("png");
    std::fs::create_dir_all(root.join("front")).expect("mkdir");
    symlink(
        outside.join("secret.bin"),
        root.join("front").join("leak.jpg"),
    )
    .expect("ln");
    symlink(outside.join("tree"), root.join("front").join("usrlink")).expect("ln");
    counted(&wp, "rejected_symlink", 2).await;
    // New files under the linked tree are not watched either.
    let later = image_bytes(20_000);
    std::fs::write(outside.join("tree").join("later.png"), &later).expect("png");
    still_healthy(&stack, &wp, 1).await;
    let uploads = stack.ai.get("yolo26").uploads();
    for bytes in [&secret, &tree_image, &later] {
        assert!(
            !uploads.contains(&sha256(bytes)),
            "bytes from outside the root reached YOLO26"
        );
    }
    assert_eq!(uploads.len(), 1);
    let p = json(format!("{}/api/system/pipeline", wp.url())).await;
    assert_eq!(p["file_watcher"]["pending_tasks"], 0, "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_neither_forge_log_lines_nor_collide() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let forged = "2026-11-29T00:00:00.000000Z ERROR watchpost: FORGED";
    let evil = root.join(format!("Evil\n{forged}"));
    std::fs::create_dir_all(&evil).expect("mkdir");
    std::fs::write(evil.join("a.png"), image_bytes(12_000)).expect("write");
    let cam = root.join("garden");
    std::fs::create_dir_all(&cam).expect("mkdir");
    for name in [&b"a_\xff.jpg"[..], &b"a_\xfd.jpg"[..]] {
        std::fs::write(
            cam.join(std::ffi::OsStr::from_bytes(name)),
            image_bytes(12_000),
        )
        .expect("write");
    }
    counted(&wp, "rejected_name", 3).await;
    still_healthy(&stack, &wp, 1).await;
    assert_eq!(
        stack.rows("detections"),
        1,
        "refused names were not processed"
    );
    let log = wp.log();
    assert!(
        !log.lines().any(|l| l.starts_with(forged)),
        "a forged log line stands alone in the log"
    );
    assert!(
        log.contains("\\n2026-11-29T00:00:00"),
        "the name is logged escaped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_or_broken_camera_root_is_watched_again_without_crashing() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    let root = wp.dir.path().join("cameras");
    write_image(&root, "door", "first.png");
    wait_rows(&stack, "detections", 1).await;

    // mv cams cams.old; mkdir cams: new files in the new folder are found.
    std::fs::rename(&root, wp.dir.path().join("cameras.old")).expect("mv");
    // (The watcher may recreate the missing root before this does.)
    std::fs::create_dir_all(&root).expect("mkdir");
    write_image(&root, "door", "second.png");
    wait_rows(&stack, "detections", 2).await;

    // A plain file in its place: the watcher says why it is not running.
    std::fs::remove_dir_all(&root).expect("rm");
    std::fs::write(&root, b"not a directory").expect("file");
    // (Between the two steps the watcher may report the root as missing first.)
    eventually("the watcher reports the broken root", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            let error = p["file_watcher"]["error"].as_str().unwrap_or("");
            (p["file_watcher"]["running"] == false && error.contains("not a directory"))
                .then_some(())
        }
    })
    .await;
    // Removed: it is recreated and watched again.
    std::fs::remove_file(&root).expect("rm file");
    eventually("watching again", || {
        let base = base.clone();
        async move {
            let p = json(format!("{base}/api/system/pipeline")).await;
            (p["file_watcher"]["running"] == true && p["file_watcher"]["error"].is_null())
                .then_some(())
        }
    })
    .await;
    assert!(root.is_dir());
    still_healthy(&stack, &wp, 3).await;
    let history = json(format!(
        "{base}/api/system/supervisor/restart-history?worker_name=file_watcher"
    ))
    .await;
    assert_eq!(
        history["pagination"]["total"], 0,
        "never crashed: {history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_process_within_the_grace_period_with_work_in_flight() {
    let stack = Stack::new(&[("WATCHPOST_SUPERVISOR__SHUTDOWN_GRACE_SECONDS", "2")]);
    stack.ai.get("yolo26").set_route_mode("detect", Mode::Hang);
    let mut wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    // A FIFO (which used to block a read forever) and an upload that never returns.
    std::fs::create_dir_all(root.join("porch")).expect("mkdir");
    let fifo = root.join("porch").join("pipe.jpg");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).expect("cstring");
    // SAFETY: a NUL-terminated path; mkfifo has no memory effects.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    write_image(&root, "porch", "stuck.png");
    let yolo = stack.ai.get("yolo26").clone();
    eventually("the upload is in flight", || {
        let yolo = yolo.clone();
        async move { (yolo.counters().detect.load(Ordering::SeqCst) >= 1).then_some(()) }
    })
    .await;
    counted(&wp, "rejected_not_regular", 1).await;
    let sent = Instant::now();
    // `terminate` kills the process after the harness's patience: a clean exit status
    // is the proof that it ended by itself.
    let status = wp.terminate().expect("exit status");
    crate::support::figure("sigterm_exit", sent.elapsed().as_secs_f64(), "s");
    assert!(status.success(), "{status:?}");
    // The image whose upload was cut short is not lost: the next run detects it.
    let dir = wp.kill();
    yolo.set_route_mode("detect", Mode::Normal);
    let wp = stack.start(dir);
    eventually(
        "the interrupted image is detected after the restart",
        || {
            let yolo = yolo.clone();
            async move { (!yolo.uploads().is_empty()).then_some(()) }
        },
    )
    .await;
    drop(wp);
}
