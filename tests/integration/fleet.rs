//! A fleet: three hosts as network namespaces on one bridge, each with its own
//! camera folder (on its own disk) and its own AI box, sharing Redis and PostgreSQL
//! on the fourth (this machine's side of the bridge).

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::fleet::Fleet;
use crate::support::images::write_image;
use crate::support::{eventually, eventually_for, json};

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
