//! The status page in a real headless Chromium (WebDriver), against the real binary
//! with real Redis and PostgreSQL and the fake AI server.

use crate::support::browser::Browser;
use crate::support::{client, eventually, json, metrics, wait_rows, write_image, Stack};
use serde_json::{json, Value};
use std::path::PathBuf;

const XSS: &str = "<img src=x onerror=alert(1)>";

fn js_str(v: serde_json::Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// Console entries that are errors (Chromium reports them as SEVERE).
async fn console_errors(b: &Browser) -> Vec<String> {
    b.console()
        .await
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .map(|(_, m)| m)
        // A thumbnail of a picture that is gone (cleaned up, or replaced by something
        // that is not a picture) is answered 4xx, and the page shows "picture gone":
        // the browser still logs the failed load.
        .filter(|m| {
            !(m.contains("/api/system/thumbnail?")
                && (m.contains("status of 404") || m.contains("status of 400")))
        })
        .collect()
}

/// What the page's verdict should say, from the API: the firing alerts (not
/// silenced) first; with none, "All systems operational" when healthy, else the
/// status.
async fn expected_verdict(base: &str) -> String {
    let health = json(format!("{base}/api/system/health/full")).await;
    let alerts = json(format!("{base}/api/system/alerts?state=firing&limit=100")).await;
    let firing: Vec<&Value> = alerts["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|a| a["silenced_by"].as_array().is_none_or(|s| s.is_empty()))
                .collect()
        })
        .unwrap_or_default();
    let critical = firing
        .iter()
        .filter(|a| a["severity"] == "critical")
        .count();
    let warnings = firing.len() - critical;
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    if critical > 0 {
        let more = if warnings > 0 {
            format!(" and {}", plural(warnings, "warning"))
        } else {
            String::new()
        };
        return format!("{}{more}", plural(critical, "critical alert"));
    }
    if warnings > 0 {
        return plural(warnings, "warning");
    }
    match health["status"].as_str().unwrap_or("") {
        "healthy" => "All systems operational".into(),
        other => other.to_string(),
    }
}

async fn wait_text(b: &Browser, css: &str, what: &str, want: impl Fn(&str) -> bool) -> String {
    eventually(what, || async {
        let t = b.text(css).await;
        want(&t).then_some(t)
    })
    .await
}

/// The value of `data-<name>` on the element with `id` (what the page decided to show).
async fn data_of(b: &Browser, id: &str, name: &str) -> String {
    js_str(
        b.execute(
            "return document.getElementById(arguments[0]).dataset[arguments[1]] || '';",
            json!([id, name]),
        )
        .await,
    )
}

/// The connection notice is hidden because the page is live (not merely because
/// nothing was rendered yet).
async fn live(b: &Browser) -> bool {
    data_of(b, "connection", "state").await == "live" && is_hidden(b, "connection").await
}

/// The spool banner is hidden because the page saw Redis up.
async fn spool_banner_off(b: &Browser) -> bool {
    data_of(b, "spool-banner", "redis").await == "up" && is_hidden(b, "spool-banner").await
}

async fn is_hidden(b: &Browser, id: &str) -> bool {
    b.execute(
        "return document.getElementById(arguments[0]).hidden;",
        json!([id]),
    )
    .await
    .as_bool()
    .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_live_safe_and_agrees_with_the_api() {
    // Samples every half second, so the sparklines have a shape by the screenshot.
    let stack = Stack::new(&[("WATCHPOST_PERFORMANCE__SAMPLE_INTERVAL_SECONDS", "0.5")]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");

    // Security headers on the page.
    let resp = client()
        .get(format!("{}/", wp.url()))
        .send()
        .await
        .expect("GET /");
    assert_eq!(resp.status().as_u16(), 200);
    let header = |n: &str| {
        resp.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert!(header("content-security-policy").starts_with("default-src 'self'"));
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("x-frame-options"), "DENY");
    assert!(header("content-type").starts_with("text/html"));

    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{}/", wp.url())).await;

    // The verdict is the API's (firing alerts first, then health), in the page and in
    // the title.
    eventually("the page's verdict equals the API's", || async {
        let want = expected_verdict(&wp.url()).await;
        let shown = b.text("#overall-text").await;
        let title = js_str(b.execute("return document.title;", json!([])).await);
        (shown == want && title == format!("● {want} — watchpost")).then_some(())
    })
    .await;
    // Live through the WebSocket (the fallback banner is hidden).
    eventually("live updates connected", || async {
        live(&b).await.then_some(())
    })
    .await;
    b.wait_for("#workers tr[data-key=\"file_watcher\"]").await;

    // A new camera folder with a hostile name, and images: the folder name renders as
    // text, and the events arrive without a reload.
    let xss_dir = root.join(XSS);
    std::fs::create_dir_all(&xss_dir).expect("hostile folder");
    write_image(&root, XSS, "a.png");
    write_image(&root, "front_door", "b.png");
    let folder = eventually("the hostile folder listed", || async {
        let names = b
            .execute(
                "return [...document.querySelectorAll('#cameras li .folder')].map((e) => e.textContent);",
                json!([]),
            )
            .await;
        names
            .as_array()
            .and_then(|n| n.iter().find(|f| f.as_str() == Some(XSS)).cloned())
    })
    .await;
    assert_eq!(folder, json!(XSS));
    wait_text(&b, "#events", "events from both cameras", |t| {
        t.contains("front_door") && t.contains("img_srcx_onerroralert1")
    })
    .await;
    // The only pictures are the page's own thumbnails, from its own API.
    let imgs = b
        .execute(
            "return Array.from(document.querySelectorAll('img')).filter(i => !(i.classList.contains('thumb') && (i.getAttribute('src') || '').startsWith('/api/system/thumbnail?') || (i.getAttribute('src') || '').startsWith('blob:'))).length;",
            json!([]),
        )
        .await;
    assert_eq!(imgs, json!(0), "the folder name became markup");
    assert_eq!(
        b.alert_text().await,
        None,
        "a script from the folder name ran"
    );

    // After a reload the events are still listed (read from PostgreSQL).
    b.goto(&format!("{}/", wp.url())).await;
    wait_text(&b, "#events", "events listed again after a reload", |t| {
        t.contains("front_door") && t.contains("img_srcx_onerroralert1")
    })
    .await;
    let api = json(format!("{}/api/system/events/recent", wp.url())).await;
    assert_eq!(api["count"], json!(2), "{api}");

    // Keyboard focus is visible: the first Tab lands on a control with an outline.
    b.press_tab().await;
    let focus = b
        .execute(
            "const e = document.activeElement; const s = getComputedStyle(e); return [e.tagName, s.outlineStyle, parseFloat(s.outlineWidth)];",
            json!([]),
        )
        .await;
    assert_eq!(focus[0], json!("A"), "{focus}");
    assert!(
        focus[1] != json!("none") && focus[2].as_f64().unwrap_or(0.0) >= 2.0,
        "no visible focus: {focus}"
    );

    // No console error and no CSP violation so far.
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");

    // Screenshot for the README (wide and tall enough to show every section), with no
    // control focused (the skip link would cover the title).
    b.execute("document.activeElement.blur();", json!([])).await;
    b.set_window(1280, 2400).await;
    wait_text(&b, "#host", "sparklines of several samples", |t| {
        let counts: Vec<u32> = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[1].starts_with("samples"))
            .filter_map(|w| w[0].parse().ok())
            .collect();
        counts.len() == 3 && counts.iter().all(|n| *n >= 5)
    })
    .await;
    // Usable at 360 px: nothing makes the page itself scroll sideways.
    b.set_window(360, 800).await;
    let widths = b
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            json!([]),
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "page wider than the 360 px window: {widths}"
    );

    // The CSP is enforced and the console check sees a violation when there is one.
    let blocked = b
        .execute(
            "const s = document.createElement('script'); s.textContent = 'window.inlineRan = true;'; document.head.append(s); return window.inlineRan === undefined;",
            json!([]),
        )
        .await;
    assert_eq!(blocked, json!(true), "an inline script ran despite the CSP");
    let after = console_errors(&b).await;
    assert!(
        after.iter().any(|m| m.contains("Content Security Policy")),
        "the violation was not reported: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_worker_from_the_page_asks_for_the_key() {
    let stack = Stack::new(&[("WATCHPOST_API_KEYS", "page-test-key")]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{}/", wp.url())).await;
    let stop = "#workers tr[data-key=\"cleanup_service\"] button[data-action=\"stop\"]";

    // Without a key the socket is refused, so the page polls and says so.
    wait_text(&b, "#connection", "the polling notice", |t| {
        t.contains("refreshing every 5 s")
    })
    .await;
    // Polling still lists the latest events (read, not pushed).
    write_image(&wp.dir.path().join("cameras"), "porch", "a.png");
    wait_text(&b, "#events", "the event listed without a key", |t| {
        t.contains("porch")
    })
    .await;
    // Only what a worker's state allows is offered: a running worker can be stopped,
    // not started.
    let shown = |worker: &'static str, action: &'static str| {
        let b = &b;
        async move {
            b.execute(
                "const e = document.querySelector(arguments[0]); return !!e && !e.hidden;",
                json!([format!(
                    "#workers tr[data-key=\"{worker}\"] button[data-action=\"{action}\"]"
                )]),
            )
            .await
                == json!(true)
        }
    };
    b.wait_for(stop).await;
    assert!(shown("cleanup_service", "stop").await);
    assert!(!shown("cleanup_service", "start").await);

    // A wrong key: the failure is shown, nothing changes.
    let button = b.wait_for(stop).await;
    b.click(&button).await;
    let input = b.wait_for("#key-dialog[open] #key-input").await;
    b.type_text(&input, "not-the-key").await;
    b.click(&b.wait_for("#key-submit").await).await;
    let message = wait_text(&b, "#message", "a readable failure", |t| {
        t.contains("API key was missing or wrong")
    })
    .await;
    assert!(message.contains("Stop cleanup_service failed"), "{message}");

    // The right key: the row and the API agree that the worker stopped.
    b.click(&b.wait_for(stop).await).await;
    let input = b.wait_for("#key-dialog[open] #key-input").await;
    b.type_text(&input, "page-test-key").await;
    b.click(&b.wait_for("#key-submit").await).await;
    wait_text(
        &b,
        "#workers tr[data-key=\"cleanup_service\"] td:nth-child(2)",
        "the row shows stopped",
        |t| t.contains("stopped"),
    )
    .await;
    eventually("stopped: Start offered, Stop not", || async {
        (shown("cleanup_service", "start").await && !shown("cleanup_service", "stop").await)
            .then_some(())
    })
    .await;
    // With the key the socket opens and live updates resume.
    eventually("live again with the key", || async {
        live(&b).await.then_some(())
    })
    .await;
    let sup = json(format!("{}/api/system/supervisor", wp.url())).await;
    let status = sup["workers"]
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["name"] == "cleanup_service"))
        .map(|w| w["status"].clone());
    assert_eq!(status, Some(json!("stopped")));
    // The key stayed in the tab's session storage only.
    let stored = b
        .execute(
            "return [sessionStorage.getItem('watchpost.apiKey'), localStorage.length, location.href];",
            json!([]),
        )
        .await;
    assert_eq!(stored[0], json!("page-test-key"));
    assert_eq!(stored[1], json!(0));
    assert!(!js_str(stored[2].clone()).contains("page-test-key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_banner_shows_while_redis_is_down() {
    let mut stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{}/", wp.url())).await;
    eventually("the page saw Redis up", || async {
        spool_banner_off(&b).await.then_some(())
    })
    .await;

    stack.redis.stop();
    write_image(&wp.dir.path().join("cameras"), "porch", "spooled.png");
    let banner = wait_text(&b, "#spool-banner", "the spool banner", |t| {
        t.contains("Redis is unreachable")
    })
    .await;
    assert!(banner.contains("spooled"), "{banner}");

    stack.redis.start_again();
    eventually("the banner goes when Redis is back", || async {
        spool_banner_off(&b).await.then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_requeued_from_the_page_once_the_file_is_fixed() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let base = wp.url();
    let worker = |verb: &'static str| {
        let url = format!("{base}/api/system/supervisor/workers/detection_worker/{verb}");
        async move { client().post(url).send().await.expect("POST").status() }
    };
    assert_eq!(worker("stop").await.as_u16(), 200);
    // Queue an image, then swap it for a directory: detection dead-letters it.
    let path = write_image(&wp.dir.path().join("cameras"), "porch", "swapped.png");
    let bytes = std::fs::read(&path).expect("read back");
    eventually("the image queued", || async {
        metrics(&wp)
            .await
            .contains("watchpost_watcher_files_total{result=\"queued\"} 1")
            .then_some(())
    })
    .await;
    std::fs::remove_file(&path).expect("rm");
    std::fs::create_dir(&path).expect("a directory in its place");
    assert_eq!(worker("start").await.as_u16(), 200);

    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{base}/")).await;
    wait_text(&b, "#queues", "one dead letter", |t| {
        t.contains("1 dead letter") && !t.contains("1 dead letters")
    })
    .await;
    // Which file and why, so the operator knows what to fix.
    let listed = wait_text(&b, "#dead-letters", "the dead letter listed", |t| {
        t.contains("detection · not_regular")
    })
    .await;
    assert!(listed.contains(&path.display().to_string()), "{listed}");
    let requeue = b.wait_for("#queues button[data-action=\"requeue\"]").await;

    // The cause fixed (the image back in place), one click puts it back on the queue.
    std::fs::remove_dir(&path).expect("rmdir");
    std::fs::write(&path, &bytes).expect("restore");
    b.click(&requeue).await;
    let message = wait_text(&b, "#message", "the requeue's answer", |t| {
        t.contains("moved back")
    })
    .await;
    assert!(
        message.contains("1 dead letter(s) moved back to the detection queue"),
        "{message}"
    );
    wait_rows(&stack, "detections", 1).await;
    eventually("the button gone with the dead letter", || async {
        let gone = b
            .execute(
                "return document.querySelector('#queues button[data-action=\"requeue\"]') === null;",
                json!([]),
            )
            .await;
        (gone == json!(true)).then_some(())
    })
    .await;
    assert!(
        is_hidden(&b, "dead-letters").await,
        "the list goes with them"
    );
    let p = json(format!("{base}/api/system/pipeline")).await;
    assert_eq!(p["dead_letters"]["detection"], 0, "{p}");
    assert!(console_errors(&b).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cameras_panel_shows_each_cameras_status_and_why() {
    let stack = Stack::new(&[
        ("WATCHPOST_CAMERAS__MAX_IMAGES_PER_MINUTE", "7"),
        ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.1"),
        ("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "0.5"),
        ("WATCHPOST_CAMERAS__OVERRIDES__GATE__HEARTBEAT_SECONDS", "1"),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let b = Browser::start(1280, 1400).await;
    b.goto(&format!("{}/", wp.url())).await;
    eventually("live updates connected", || async {
        live(&b).await.then_some(())
    })
    .await;

    write_image(&root, "front_door", "a.png");
    write_image(&root, "gate", "snap.png");
    write_image(&root, "shed", "a.png");
    let same = crate::support::image_bytes(12_000);
    std::fs::create_dir_all(root.join("porch")).expect("dir");
    for i in 0..6 {
        std::fs::write(root.join("porch").join(format!("same-{i}.png")), &same).expect("write");
    }
    for i in 0..10 {
        write_image(&root, "drive", &format!("burst-{i}.png"));
    }
    eventually("shed registered", || async {
        let c = json(format!("{}/api/system/cameras", wp.url())).await;
        c["cameras"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["id"] == "shed").cloned())
    })
    .await;
    let r = client()
        .post(format!("{}/api/system/cameras/shed/disable", wp.url()))
        .send()
        .await
        .expect("disable");
    assert_eq!(r.status(), 200);

    for (camera, status) in [
        ("front_door", "online"),
        ("gate", "offline"),
        ("porch", "frozen"),
        ("drive", "flooding"),
        ("shed", "disabled"),
    ] {
        let css = format!("#cameras li[data-key=\"{camera}\"][data-status=\"{status}\"]");
        let text = eventually(&format!("{camera} shown {status}"), || {
            let (b, css) = (&b, css.clone());
            async move {
                let t = b.text(&css).await;
                (!t.is_empty()).then_some(t)
            }
        })
        .await;
        assert!(text.contains(status), "{camera}: {text}");
        assert!(text.contains("last image"), "{camera}: {text}");
        assert!(text.contains("in the last 24 hours"), "{camera}: {text}");
    }
    let gate = b.text("#cameras li[data-key=\"gate\"]").await;
    assert!(gate.contains("it sends one every 1 s"), "{gate}");
    let porch = b.text("#cameras li[data-key=\"porch\"]").await;
    assert!(porch.contains("with the same picture"), "{porch}");
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// The header never says "healthy" above a firing alert: with a critical alert firing
/// it names the alerts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verdict_names_the_firing_alerts_and_never_says_healthy_above_them() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{}/", wp.url())).await;
    wait_text(&b, "#overall-text", "all operational first", |t| {
        t == "All systems operational"
    })
    .await;
    stack
        .ai
        .get("yolo26")
        .set_mode(crate::support::fake_ai::Mode::Status(503));
    let header = wait_text(&b, "header", "the critical alert in the header", |t| {
        t.contains("1 critical alert") && t.contains("WatchpostDependencyDown (ai:yolo26)")
    })
    .await;
    assert!(
        !header.contains("healthy") && !header.contains("All systems operational"),
        "{header}"
    );
}

/// With nothing reachable and no camera, the first screen says what a fresh start is
/// and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_start_is_explained_on_the_first_screen() {
    let wp = crate::support::Watchpost::start(&[]);
    let b = Browser::start(1280, 900).await;
    b.goto(&format!("{}/", wp.url())).await;
    eventually("the first-run hint shown", || async {
        (!is_hidden(&b, "first-run").await).then_some(())
    })
    .await;
    let hint = b.text("#first-run").await;
    assert!(
        hint.contains("scripts/stack.sh") && hint.contains("--check-config"),
        "{hint}"
    );
    // On the first screen: above everything else.
    let top = b
        .execute(
            "return document.getElementById('first-run').getBoundingClientRect().top < window.innerHeight;",
            json!([]),
        )
        .await;
    assert_eq!(top, json!(true));
}

/// An event's picture shows as a thumbnail; the thumbnail endpoint serves only
/// images below the camera root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_events_thumbnail_loads_and_only_pictures_below_the_root_are_served() {
    let stack = Stack::new(&[]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    let image = write_image(&root, "porch", "visitor.png");
    let b = Browser::start(1280, 1000).await;
    b.goto(&format!("{}/", wp.url())).await;
    eventually("the event's thumbnail loaded", || async {
        let loaded = b
            .execute(
                "const i = document.querySelector('#events img.thumb'); return !!i && i.complete && i.naturalWidth > 0;",
                json!([]),
            )
            .await;
        (loaded == json!(true)).then_some(())
    })
    .await;
    let thumb = |path: String| {
        let url = format!("{}/api/system/thumbnail", wp.url());
        async move {
            let r = client()
                .get(url)
                .query(&[("path", path)])
                .send()
                .await
                .expect("GET thumbnail");
            let status = r.status().as_u16();
            let ctype = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (status, ctype, r.bytes().await.unwrap_or_default())
        }
    };
    let (status, ctype, body) = thumb(image.display().to_string()).await;
    assert_eq!((status, ctype.as_str()), (200, "image/jpeg"));
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
    // Outside the root, through a symlink, gone.
    let outside = tempfile::tempdir().expect("outside");
    let secret = outside.path().join("secret.png");
    std::fs::copy(&image, &secret).expect("copy");
    std::os::unix::fs::symlink(&secret, root.join("porch/link.png")).expect("symlink");
    for (path, want) in [
        (secret.display().to_string(), 400),
        (
            root.join("porch/../../etc/passwd").display().to_string(),
            400,
        ),
        (root.join("porch/link.png").display().to_string(), 400),
        (root.join("porch/gone.png").display().to_string(), 404),
    ] {
        let (status, ctype, body) = thumb(path.clone()).await;
        assert_eq!(status, want, "{path}");
        assert!(ctype.starts_with("application/json"), "{path}: {ctype}");
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert!(v["detail"].is_string(), "{path}: {v}");
    }
    let r = client()
        .get(format!("{}/api/system/thumbnail", wp.url()))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 400, "no path");
}

/// The README's screenshot, of a realistic home: three cameras (one silent), events
/// with their pictures, a notifier, the host charts. Written to
/// `docs/status-page.png` with `WATCHPOST_UPDATE_SCREENSHOT=1`; always to the target
/// directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_screenshot_shows_a_realistic_home() {
    let rx = crate::support::notify::HttpReceiver::start().await;
    let hooks = format!(
        "[{{name = \"phone\", format = \"ntfy\", url = \"{}\"}}]",
        rx.url("/home-alerts")
    );
    let stack = Stack::new(&[
        ("WATCHPOST_PERFORMANCE__SAMPLE_INTERVAL_SECONDS", "0.5"),
        (
            "WATCHPOST_CAMERAS__OVERRIDES__GARAGE__MAX_SILENCE_SECONDS",
            "5",
        ),
        ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ("WATCHPOST_NOTIFY__WEBHOOKS", &hooks),
    ]);
    let wp = stack.start(tempfile::tempdir().expect("dir"));
    let root = wp.dir.path().join("cameras");
    for (k, (folder, n)) in [("Front Door", 3), ("Back Yard", 2), ("Garage", 1)]
        .into_iter()
        .enumerate()
    {
        let dir = root.join(folder);
        std::fs::create_dir_all(&dir).expect("camera folder");
        for i in 0..n {
            let seed = (k as u64) * 10 + u64::from(i);
            let bytes = crate::support::padded_png(&scene(k as u32, i), 24_000, seed);
            std::fs::write(dir.join(format!("snap-{i}.png")), bytes).expect("image");
        }
    }
    let b = Browser::start(1280, 2400).await;
    b.goto(&format!("{}/", wp.url())).await;
    wait_text(&b, "#events", "events with pictures", |t| {
        t.contains("front_door") && t.contains("back_yard")
    })
    .await;
    // The garage camera goes quiet: a warning, told to the phone.
    wait_text(&b, "#overall-text", "the garage's warning", |t| {
        t == "1 warning"
    })
    .await;
    eventually("the thumbnails loaded", || async {
        let loaded = b
            .execute(
                "const t = Array.from(document.querySelectorAll('img.thumb')); return t.length >= 5 && t.every(i => i.complete && i.naturalWidth > 0);",
                json!([]),
            )
            .await;
        (loaded == json!(true)).then_some(())
    })
    .await;
    b.execute("document.activeElement.blur();", json!([])).await;
    wait_text(&b, "#host", "sparklines of several samples", |t| {
        let counts: Vec<u32> = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[1].starts_with("samples"))
            .filter_map(|w| w[0].parse().ok())
            .collect();
        counts.len() == 3 && counts.iter().all(|n| *n >= 5)
    })
    .await;
    let png = b.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // Cargo's scratch directory for integration tests (inside the target directory).
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    std::fs::write(&target, &png).expect("write screenshot");
    if std::env::var_os("WATCHPOST_UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/status-page.png");
        std::fs::write(docs, &png).expect("write docs screenshot");
    }
    let errors = console_errors(&b).await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
}

/// A picture that looks like a camera's view: sky, a lawn, a house and a door (a
/// little different for each camera and shot).
fn scene(camera: u32, shot: u32) -> image::RgbImage {
    let (w, h) = (320u32, 180u32);
    image::RgbImage::from_fn(w, h, |x, y| {
        let horizon = 95 + camera * 6;
        let house =
            (110 + camera * 40..210 + camera * 40).contains(&x) && (60..horizon + 20).contains(&y);
        let door =
            (150 + camera * 40..172 + camera * 40).contains(&x) && (100..horizon + 20).contains(&y);
        let visitor =
            shot > 0 && (40 + shot * 30..52 + shot * 30).contains(&x) && (110..150).contains(&y);
        let rgb = if visitor {
            [200, 60, 50]
        } else if door {
            [90, 55, 35]
        } else if house {
            [205 - camera as u8 * 20, 190, 170]
        } else if y < horizon {
            [120 + (y / 3) as u8, 170 + (y / 4) as u8, 230]
        } else {
            [60 + (x % 7) as u8, 130 + (y % 11) as u8, 60]
        };
        image::Rgb(rgb)
    })
}
