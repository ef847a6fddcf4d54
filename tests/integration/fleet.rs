//! A fleet: three hosts as network namespaces on one bridge, each with its own
//! camera folder (on its own disk) and its own AI box, sharing Redis and PostgreSQL
//! on the fourth (this machine's side of the bridge).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::fleet::Fleet;
use crate::support::images::write_image;
use crate::support::{eventually, eventually_for, json};

/// A receiver on the bridge that every host tells (a `json` webhook at `/hook`).
async fn hook_on_every_host(fleet: &mut Fleet) -> crate::support::notify::HttpReceiver {
    let rx = crate::support::notify::HttpReceiver::start_at(&fleet.gateway()).await;
    for h in &mut fleet.hosts {
        h.env.push((
            "WATCHPOST_NOTIFY__WEBHOOKS".into(),
            format!(
                "[{{name = \"hook\", format = \"json\", url = \"{}\"}}]",
                rx.url("/hook")
            ),
        ));
    }
    rx
}

/// Start every host and wait until each one's watcher runs.
async fn start_all(fleet: &mut Fleet) {
    for h in &mut fleet.hosts {
        h.start();
    }
    for h in &fleet.hosts {
        let url = h.wp().url();
        eventually("the host's watcher runs", || async {
            let p = json(format!("{url}/api/system/pipeline")).await;
            (p["file_watcher"]["running"] == true).then_some(())
        })
        .await;
    }
}

/// Seen before: items of host 1's pictures were taken by the other hosts from the
/// one shared detection queue and dead-lettered as `outside_root`, since those
/// pictures are not on their disks. Now each host's camera root has its own
/// identity and its own detection stream: every picture is detected once, by the
/// host that has it, and nothing is dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_each_detect_the_pictures_of_their_own_folders() {
    let mut fleet = Fleet::new(3, &[]);
    start_all(&mut fleet).await;
    // 90 into host 1's folder, then 90 spread over the three.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut written = [0u64; 3];
    for n in 0..180usize {
        tick.tick().await;
        let i = if n < 90 { 0 } else { n % 3 };
        let h = &fleet.hosts[i];
        // Six cameras a host (one camera sending 90 a minute is a flood, skipped).
        write_image(
            &h.camera_root(),
            &format!("{}-cam{}", h.id, n % 6),
            &format!("img-{n:03}.png"),
        );
        written[i] += 1;
    }
    eventually_for(
        Duration::from_secs(120),
        "every picture detected",
        || async {
            (fleet.count("select count(distinct file_path) from detections") == 180).then_some(())
        },
    )
    .await;
    for (h, written) in fleet.hosts.iter().zip(written) {
        let dead = json(format!(
            "{}/api/system/pipeline/dead-letters/detection",
            h.wp().url()
        ))
        .await;
        assert_eq!(dead["total"], 0, "{}: {dead}", h.id);
        let asked = h.ai.get("yolo26").counters().detect.load(Ordering::Relaxed);
        assert_eq!(
            asked, written,
            "{}'s AI box saw its own pictures, once each",
            h.id
        );
    }
    assert_eq!(
        fleet.count("select count(*) from (select file_path from detections group by file_path, seq having count(*) > 1) d"),
        0,
        "no picture detected twice"
    );
    eventually_for(Duration::from_secs(60), "every detection in one event", || async {
        (fleet.count(
            "select count(*) from detections d where not exists (select 1 from events e where e.batch_id = d.batch_id)",
        ) == 0)
            .then_some(())
    })
    .await;
}

/// Consumers of the analysis queue with items taken and not acknowledged.
fn analysis_pending(fleet: &Fleet, consumer: &str) -> u64 {
    let out = std::process::Command::new(crate::support::require("redis-cli", "redis-server"))
        .args([
            "-p",
            &fleet.redis.port.to_string(),
            "XPENDING",
            "watchpost:queue:analysis",
            "watchpost",
        ])
        .output()
        .expect("redis-cli");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .position(|l| l.trim() == consumer)
        .and_then(|i| lines.get(i + 1)?.trim().parse().ok())
        .unwrap_or(0)
}

/// A host killed for good while its analysis worker holds a batch: within
/// `fleet.lost_after_seconds` + 2 s the others take its pending work over and finish
/// it, both list it `lost`, and `WatchpostInstanceLost` fires once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_killed_for_good_is_lost_its_work_taken_over_and_told_once() {
    const LOST_AFTER: f64 = 5.0;
    let mut fleet = Fleet::new(
        3,
        &[
            ("WATCHPOST_FLEET__LOST_AFTER_SECONDS", "5"),
            // Half-second heartbeats: the loss is seen within half a second of the
            // limit, leaving the rest of the 2 s to a loaded machine.
            ("WATCHPOST_FLEET__HEARTBEAT_SECONDS", "0.5"),
            ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
        ],
    );
    // Host 3's Nemotron takes requests and never answers: what its analysis worker
    // takes stays pending on it.
    fleet.hosts[2].env.push((
        "WATCHPOST_AI__ANALYSIS_TIMEOUT_SECONDS".into(),
        "300".into(),
    ));
    fleet.hosts[2]
        .ai
        .get("nemotron")
        .set_route_mode("completion", crate::support::fake_ai::Mode::Hang);
    start_all(&mut fleet).await;
    // Batches from every host until host 3's analysis worker holds one.
    let mut batches = 0;
    let held = loop {
        assert!(batches < 60, "host 3 never took an analysis item");
        for h in &fleet.hosts {
            write_image(&h.camera_root(), &format!("{}-cam{batches}", h.id), "a.png");
            batches += 1;
        }
        let pending = eventually_for(Duration::from_secs(10), "a batch handed on", || async {
            (fleet.count(
                "select count(distinct batch_id) from detections where batch_id is not null",
            ) >= batches)
                .then_some(analysis_pending(&fleet, "host3:analysis_worker"))
        })
        .await;
        if pending > 0 {
            break pending;
        }
    };
    // Killed for good.
    fleet.hosts[2].kill();
    let killed = std::time::Instant::now();
    eventually_for(
        Duration::from_secs(30),
        "host 3's work taken over",
        || async { (analysis_pending(&fleet, "host3:analysis_worker") == 0).then_some(()) },
    )
    .await;
    let took = killed.elapsed().as_secs_f64();
    crate::support::figure("fleet_takeover_after_kill_seconds", took, "s");
    assert!(
        took <= LOST_AFTER + 2.0,
        "{held} item(s) of host 3 taken over {took:.1} s after the kill"
    );
    // Finished by the others: every batch has its event.
    eventually_for(Duration::from_secs(60), "every batch analysed", || async {
        (fleet.count("select count(*) from events") >= batches).then_some(())
    })
    .await;
    for h in &fleet.hosts[..2] {
        let v = json(format!("{}/api/system/instances", h.wp().url())).await;
        let list = v["instances"].as_array().expect("instances");
        assert_eq!(list.len(), 3, "{v}");
        let three = list.iter().find(|i| i["id"] == "host3").expect("host3");
        assert_eq!(three["status"], "lost", "{v}");
        assert!(
            three["cameras"].as_array().is_some_and(|c| !c.is_empty()),
            "{v}"
        );
        let one = list.iter().find(|i| i["id"] == "host1").expect("host1");
        assert_eq!(one["status"], "up", "{v}");
        assert_eq!(
            one["address"],
            format!("{}:{}", fleet.hosts[0].host.addr, fleet.hosts[0].port)
        );
    }
    eventually("WatchpostInstanceLost fired", || async {
        (fleet.count("select count(*) from alerts where source = 'instance:host3' and alertname = 'WatchpostInstanceLost'") == 1)
            .then_some(())
    })
    .await;
    // Decided by both survivors, fired once.
    let m = crate::support::metrics(fleet.hosts[0].wp()).await;
    assert_eq!(
        crate::support::metric(&m, "watchpost_fleet_instances{status=\"lost\"}"),
        Some(1.0)
    );
    assert_eq!(
        crate::support::metric(&m, "watchpost_fleet_instances{status=\"up\"}"),
        Some(2.0)
    );
    assert_eq!(
        fleet.count("select count(*) from alerts where source = 'instance:host3'"),
        1,
        "one alert, not one per survivor"
    );
}

/// The fleet's cameras of one camera `id`, as an instance lists them: (host, fleet_id).
fn listed<'a>(list: &'a serde_json::Value, id: &str) -> Vec<(&'a str, &'a str)> {
    let mut found: Vec<(&str, &str)> = list["cameras"]
        .as_array()
        .map(|cams| {
            cams.iter()
                .filter(|c| c["id"] == id)
                .filter_map(|c| Some((c["host"].as_str()?, c["fleet_id"].as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    found.sort_unstable();
    found
}

/// One view and one set of silences: any host lists every host's cameras with
/// their host (two hosts' `porch` folders are two cameras), answers an action on
/// another host's camera with where to go, and its page shows them with a Fleet
/// panel; a silence made on host 1 holds a notification that host 3 decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_view_of_the_fleet_s_cameras_and_a_silence_made_on_one_host_holds_another_s() {
    const KEY: &str = "fleet-test-key";
    let mut fleet = Fleet::new(
        3,
        &[
            // Reached over the network: a POST needs the key.
            ("WATCHPOST_API_KEYS", KEY),
            ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
            ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
            ("WATCHPOST_CAMERAS__CHECK_INTERVAL_SECONDS", "0.2"),
            ("WATCHPOST_CAMERAS__HEARTBEAT_GRACE_SECONDS", "0.4"),
            // Offline 2 s after its image (two heartbeats and the grace).
            (
                "WATCHPOST_CAMERAS__OVERRIDES__DRIVE__HEARTBEAT_SECONDS",
                "0.8",
            ),
            (
                "WATCHPOST_CAMERAS__OVERRIDES__YARD__HEARTBEAT_SECONDS",
                "0.8",
            ),
        ],
    );
    let rx = hook_on_every_host(&mut fleet).await;
    start_all(&mut fleet).await;
    for (i, folder) in [(0, "porch"), (0, "yard"), (1, "porch"), (2, "gate")] {
        write_image(&fleet.hosts[i].camera_root(), folder, "a.png");
    }
    let b = fleet.hosts[1].wp().url();
    let list = eventually_for(
        Duration::from_secs(20),
        "host 2 lists the fleet's cameras",
        || async {
            let l = json(format!("{b}/api/system/cameras")).await;
            (l["count"] == 4).then_some(l)
        },
    )
    .await;
    assert_eq!(
        listed(&list, "porch"),
        [("host1", "host1/porch"), ("host2", "host2/porch")],
        "{list}"
    );
    assert_eq!(listed(&list, "yard"), [("host1", "yard")], "{list}");
    assert_eq!(listed(&list, "gate"), [("host3", "gate")], "{list}");
    // Stored as two cameras, each under the root that holds it, written by its host.
    eventually("two porch rows", || async {
        (fleet
            .pg
            .psql("select string_agg(owner, ',' order by owner) from cameras where id = 'porch'")
            == "host1,host2")
            .then_some(())
    })
    .await;

    // An action on host 1's camera, asked of host 2: where to go.
    let (code, body) =
        crate::support::post(format!("{b}/api/system/cameras/yard/disable"), Some(KEY)).await;
    assert_eq!(code, 409, "{body}");
    let detail = crate::support::detail(&body);
    let a_at = format!("{}:{}", fleet.hosts[0].host.addr, fleet.hosts[0].port);
    assert!(
        detail.contains("host1") && detail.contains(&a_at),
        "{detail}"
    );
    // Its own porch is its own.
    let (code, _) =
        crate::support::post(format!("{b}/api/system/cameras/porch/disable"), Some(KEY)).await;
    assert_eq!(code, 200);

    // Host 2's page: host 1's cameras with their host, and the Fleet panel.
    let browser = crate::support::browser::Browser::start(1280, 1400).await;
    browser.goto(&format!("{b}/")).await;
    browser
        .wait_for(r#"li.camera[data-key="yard"][data-host="host1"]"#)
        .await;
    browser
        .wait_for(r#"li.camera[data-key="host1/porch"][data-host="host1"]"#)
        .await;
    let yard = browser.text(r#"li.camera[data-key="yard"]"#).await;
    assert!(yard.contains("on host1"), "{yard}");
    for id in ["host1", "host2", "host3"] {
        browser
            .wait_for(&format!(
                r#"#fleet li[data-instance="{id}"][data-status="up"]"#
            ))
            .await;
    }

    // A silence made on host 1 for a camera of host 3 that has not sent yet.
    let r = crate::support::client()
        .post(format!("{}/api/system/alerts/silences", fleet.hosts[0].wp().url()))
        .header("X-API-Key", KEY)
        .json(&serde_json::json!({"matchers": {"camera": "drive"}, "duration_seconds": 600, "comment": "fleet"}))
        .send()
        .await
        .expect("silence");
    assert_eq!(r.status(), 201);
    let silence = r.json::<serde_json::Value>().await.expect("json")["id"].clone();
    // Its one image now: host 3 decides it offline 2 s later, held by the silence.
    write_image(&fleet.hosts[2].camera_root(), "drive", "a.png");
    let c = fleet.hosts[2].wp().url();
    let alert = eventually_for(
        Duration::from_secs(20),
        "host 3's drive offline",
        || async {
            let page = json(format!(
                "{c}/api/system/alerts?state=firing&source=camera:drive"
            ))
            .await;
            page["items"].as_array()?.first().cloned()
        },
    )
    .await;
    assert!(
        alert["silenced_by"]
            .as_array()
            .is_some_and(|s| s.contains(&silence)),
        "{alert}"
    );
    eventually("held back on host 3, counted", || async {
        let m = crate::support::metrics(fleet.hosts[2].wp()).await;
        crate::support::metric(
            &m,
            "watchpost_notifications_total{notifier=\"hook\",result=\"silenced\"}",
        )
        .filter(|n| *n >= 1.0)
    })
    .await;
    let told: Vec<serde_json::Value> = rx
        .on("/hook")
        .into_iter()
        .map(|r| r.json())
        .filter(|j| j["source"] == "camera:drive")
        .collect();
    assert!(told.is_empty(), "told through the silence: {told:?}");
    assert_eq!(alert["labels"]["host"], "host3", "{alert}");

    // Host 1 restarts: host 3's drive alert, firing in the shared history, is host
    // 3's to hold and resolve (before, host 1 took it over and resolved it, since
    // its own cameras have no drive). Host 1's own yard alert it takes back.
    let drive_firing = |fleet: &Fleet| {
        fleet
            .count("select count(*) from alerts where source = 'camera:drive' and ended_at is null")
    };
    assert_eq!(drive_firing(&fleet), 1);
    fleet.hosts[0].kill();
    fleet.hosts[0].start();
    let a = fleet.hosts[0].wp().url();
    eventually_for(
        Duration::from_secs(30),
        "host 1 holds its yard alert again",
        || async {
            let m = crate::support::metrics(fleet.hosts[0].wp()).await;
            crate::support::metric(&m, "watchpost_alerts_firing{severity=\"warning\"}")
                .filter(|n| *n >= 1.0)
        },
    )
    .await;
    // The yard sends again: host 1 resolves its own alert (decided after any it
    // would have taken over).
    write_image(&fleet.hosts[0].camera_root(), "yard", "b.png");
    eventually_for(
        Duration::from_secs(30),
        "host 1 resolves its yard alert",
        || async {
            (fleet.count(
                "select count(*) from alerts where source = 'camera:yard' and ended_at is null",
            ) == 0
                && json(format!(
                    "{a}/api/system/alerts?state=resolved&source=camera:yard"
                ))
                .await["items"]
                    .as_array()
                    .is_some_and(|i| !i.is_empty()))
            .then_some(())
        },
    )
    .await;
    assert_eq!(drive_firing(&fleet), 1, "host 1 resolved host 3's alert");
}

/// Two instances on one camera folder (a share both see): its camera is one camera,
/// written by one owner at a time and listed once, under its owner, by both; when
/// the owner is killed the other takes it over once the owner is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_both_instances_see_is_one_camera_with_one_owner_taken_over_when_it_is_lost() {
    let stack = crate::support::Stack::new(&[
        ("WATCHPOST_FLEET__LOST_AFTER_SECONDS", "3"),
        ("WATCHPOST_FLEET__HEARTBEAT_SECONDS", "0.5"),
    ]);
    let root = tempfile::tempdir().expect("root");
    let a = stack.instance("a", root.path());
    crate::support::watching(&a).await;
    write_image(root.path(), "porch", "a.png");
    let a_url = a.url();
    eventually("a lists the porch", || async {
        let l = json(format!("{a_url}/api/system/cameras")).await;
        (l["loaded"] == true && l["count"] == 1).then_some(())
    })
    .await;
    let owner = || {
        stack
            .pg
            .psql("select string_agg(owner, ',') from cameras where id = 'porch'")
    };
    eventually("a writes the porch", || async {
        (owner() == "a").then_some(())
    })
    .await;
    let b = stack.instance("b", root.path());
    crate::support::watching(&b).await;
    write_image(root.path(), "porch", "b.png");
    for wp in [&a, &b] {
        let url = wp.url();
        eventually("the porch listed once, under a, by both", || async {
            let l = json(format!("{url}/api/system/cameras")).await;
            (listed(&l, "porch") == [("a", "porch")] && l["count"] == 1).then_some(())
        })
        .await;
    }
    assert_eq!(owner(), "a", "one row, one owner");
    // The owner dies: b takes the porch over once a is lost (3 s).
    a.kill();
    eventually_for(Duration::from_secs(20), "b owns the porch", || async {
        (owner() == "b").then_some(())
    })
    .await;
    let url = b.url();
    eventually("b lists the porch as its own", || async {
        let l = json(format!("{url}/api/system/cameras")).await;
        (listed(&l, "porch") == [("b", "porch")]).then_some(())
    })
    .await;
}

/// Every picture uploaded to a host's detector after its detections were first
/// stored (more than `slack` seconds after): an AI call for a picture already
/// detected. `first_stored` maps a picture's hash to when its first detection row
/// was inserted.
fn uploads_after_stored(
    uploads: &[(String, f64)],
    first_stored: &std::collections::HashMap<String, f64>,
    slack: f64,
) -> Vec<(String, f64)> {
    uploads
        .iter()
        .filter(|(h, at)| first_stored.get(h).is_some_and(|s| *at > s + slack))
        .cloned()
        .collect()
}

/// The chaos run at three hosts: 600 pictures over the hosts' cameras while one
/// host is SIGKILLed every 8 s in turn (20 kills), each down long enough to be
/// lost (its work taken over, `WatchpostInstanceLost` fired) and then restarted:
/// every picture detected, none sent to a detector again once detected, every
/// detection in exactly one event, and each alert transition told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_hundred_pictures_through_twenty_kills_in_turn_are_each_detected_and_told_once() {
    const IMAGES: usize = 600;
    const KILLS: usize = 20;
    const EVERY: f64 = 8.0;
    // Down past `lost_after_seconds` (3) and the alert's decision and group wait.
    const DOWN: f64 = 6.0;
    let mut fleet = Fleet::new(
        3,
        &[
            ("WATCHPOST_FLEET__LOST_AFTER_SECONDS", "3"),
            ("WATCHPOST_FLEET__HEARTBEAT_SECONDS", "0.5"),
            ("WATCHPOST_ALERTS__FOR_WARNING_SECONDS", "0"),
            ("WATCHPOST_ALERTS__EVALUATE_INTERVAL_SECONDS", "0.2"),
        ],
    );
    let rx = hook_on_every_host(&mut fleet).await;
    start_all(&mut fleet).await;
    // When each picture's first detection row was inserted (a test-only trigger).
    fleet.pg.psql(
        "CREATE TABLE test_first_stored (file_hash TEXT PRIMARY KEY, at TIMESTAMPTZ NOT NULL);
         CREATE FUNCTION test_first_stored() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO test_first_stored VALUES (NEW.file_hash, clock_timestamp()) ON CONFLICT DO NOTHING;
           RETURN NULL;
         END $$;
         CREATE TRIGGER test_first_stored AFTER INSERT ON detections
           FOR EACH ROW EXECUTE FUNCTION test_first_stored();",
    );

    let start = std::time::Instant::now();
    let run = EVERY * (KILLS as f64 + 1.0);
    let mut pace = tokio::time::interval(Duration::from_secs_f64(run / IMAGES as f64));
    let (mut kills, mut down): (usize, Option<(usize, f64)>) = (0, None);
    let mut written = [0usize; 3];
    for n in 0..IMAGES {
        pace.tick().await;
        let i = n % 3;
        let h = &fleet.hosts[i];
        // Six cameras a host, 11 pictures a minute each.
        write_image(
            &h.camera_root(),
            &format!("{}-cam{}", h.id, (n / 3) % 6),
            &format!("img-{n:03}.png"),
        );
        written[i] += 1;
        let t = start.elapsed().as_secs_f64();
        if let Some((k, at)) = down {
            if t >= at + DOWN {
                fleet.hosts[k].start();
                down = None;
            }
        }
        if down.is_none() && kills < KILLS && t >= EVERY * (kills as f64 + 1.0) {
            let k = kills % 3;
            fleet.hosts[k].kill();
            down = Some((k, t));
            kills += 1;
        }
    }
    if let Some((k, _)) = down {
        fleet.hosts[k].start();
    }
    assert_eq!(kills, KILLS);

    // Settled: every picture detected, every detection in exactly one event.
    eventually_for(
        Duration::from_secs(240),
        "every picture detected and every detection in exactly one event",
        || async {
            let images = fleet.count("select count(distinct file_path) from detections");
            let not_once = fleet.count(
                "select count(*) from detections d
                 where (select count(*) from events e where d.id = any (e.detection_ids)) <> 1",
            );
            (images == IMAGES as u64 && not_once == 0).then_some(())
        },
    )
    .await;

    // Each host's detector saw each of its pictures, and none again once detected.
    let first_stored: std::collections::HashMap<String, f64> = fleet
        .pg
        .psql("select file_hash || ' ' || extract(epoch from at) from test_first_stored")
        .lines()
        .filter_map(|l| {
            let (h, at) = l.split_once(' ')?;
            Some((h.to_string(), at.parse().ok()?))
        })
        .collect();
    let mut repeats = 0;
    for (h, written) in fleet.hosts.iter().zip(written) {
        let uploads = h.ai.get("yolo26").uploads_at();
        let distinct: std::collections::HashSet<&String> = uploads.iter().map(|(h, _)| h).collect();
        assert_eq!(distinct.len(), written, "{}: every picture detected", h.id);
        let late = uploads_after_stored(&uploads, &first_stored, 0.2);
        assert!(
            late.is_empty(),
            "{}: {} picture(s) sent to the detector after they were detected: {late:?}",
            h.id,
            late.len()
        );
        repeats += uploads.len() - distinct.len();
    }
    // Repeats left: pictures whose detector call a kill interrupted before their
    // detections were stored (not detected yet, so asked again).
    crate::support::figure(
        "fleet_chaos_repeat_uploads_before_stored",
        repeats as f64,
        "uploads",
    );

    // Each alert transition told once; the losses were told (not a vacuous count).
    let told: Vec<serde_json::Value> = eventually_for(
        Duration::from_secs(60),
        "every told firing told resolved",
        || async {
            let all: Vec<serde_json::Value> =
                rx.on("/hook").into_iter().map(|r| r.json()).collect();
            let firing = all.iter().filter(|j| j["notification"] == "firing").count();
            let resolved = all
                .iter()
                .filter(|j| j["notification"] == "resolved")
                .count();
            (firing > 0 && firing == resolved).then_some(all)
        },
    )
    .await;
    let mut seen = std::collections::HashMap::new();
    for j in &told {
        let key = format!(
            "{} {} {}",
            j["fingerprint"], j["started_at"], j["notification"]
        );
        *seen.entry(key).or_insert(0) += 1;
    }
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(twice.is_empty(), "told more than once: {twice:?}");
    let lost_told = told
        .iter()
        .filter(|j| j["alertname"] == "WatchpostInstanceLost" && j["notification"] == "firing")
        .count();
    crate::support::figure(
        "fleet_chaos_instance_lost_told",
        lost_told as f64,
        "firings",
    );
    assert!(lost_told >= KILLS / 2, "{lost_told} of {KILLS} losses told");
}

#[test]
fn an_upload_after_its_picture_was_stored_is_found() {
    let stored = std::collections::HashMap::from([("a".to_string(), 100.0)]);
    let uploads = [
        ("a".to_string(), 99.0),
        ("a".to_string(), 100.1),
        ("a".to_string(), 101.0),
        ("b".to_string(), 500.0),
    ];
    assert_eq!(
        uploads_after_stored(&uploads, &stored, 0.2),
        [("a".to_string(), 101.0)]
    );
}
