//! Supervisor rules on tokio's paused clock: no real sleeps, exact virtual times.

use super::machine::Settings;
use super::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;
use tokio::time::Instant;

fn config(max_restarts: u32) -> SupervisorConfig {
    SupervisorConfig {
        max_restarts,
        ..SupervisorConfig::default()
    }
}

fn supervisor(cfg: &SupervisorConfig) -> Supervisor {
    Supervisor::new(cfg, Arc::new(Metrics::new()), EventBus::new())
}

/// Records the virtual instant of every start.
#[derive(Clone, Default)]
struct Starts(Arc<StdMutex<Vec<Instant>>>);

impl Starts {
    fn note(&self) {
        self.0.lock().expect("lock").push(Instant::now());
    }
    fn count(&self) -> usize {
        self.0.lock().expect("lock").len()
    }
    fn gaps_secs(&self) -> Vec<f64> {
        let v = self.0.lock().expect("lock");
        v.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect()
    }
}

fn always_failing(starts: Starts) -> WorkerSpec {
    WorkerSpec::new("flaky", false, move |_ctx| {
        let starts = starts.clone();
        async move {
            starts.note();
            Err(WorkerError::new("Connection reset by peer"))
        }
    })
}

fn well_behaved(name: &str) -> WorkerSpec {
    WorkerSpec::new(name, false, |ctx| async move {
        while ctx.idle(Duration::from_secs(10)).await {}
        Ok(())
    })
}

fn worker<'a>(st: &'a SupervisorStatus, name: &str) -> &'a WorkerInfo {
    st.workers
        .iter()
        .find(|w| w.name == name)
        .expect("worker listed")
}

/// Let virtual time run (auto-advance) until `pred` holds.
async fn until(sup: &Supervisor, name: &str, pred: impl Fn(&WorkerInfo) -> bool) {
    for _ in 0..100_000 {
        if pred(worker(&sup.status(), name)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held: {:?}", worker(&sup.status(), name));
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_one_second_then_worker_fails_after_max_restarts() {
    let starts = Starts::default();
    let sup = supervisor(&config(5));
    sup.register(always_failing(starts.clone()))
        .expect("register");
    sup.start_all();
    until(&sup, "flaky", |w| w.status == WorkerStatus::Failed).await;

    assert_eq!(starts.count(), 6, "first run plus five restarts");
    let gaps = starts.gaps_secs();
    for (gap, expected) in gaps.iter().zip([1.0, 2.0, 4.0, 8.0, 16.0]) {
        assert!((gap - expected).abs() < 0.02, "gaps {gaps:?}");
    }
    let w = worker(&sup.status(), "flaky").clone();
    assert_eq!(w.restart_count, 5);
    assert_eq!(w.error.as_deref(), Some("Connection reset by peer"));
    assert!(w.last_crashed_at.is_some());

    let page = sup.history(Some("flaky"), 100, 0);
    let seq: Vec<(RestartStatus, u32)> = page
        .items
        .iter()
        .rev()
        .map(|e| (e.status, e.attempt))
        .collect();
    let mut expected = Vec::new();
    for n in 0..5 {
        expected.push((RestartStatus::Crashed, n));
        expected.push((RestartStatus::Success, n + 1));
    }
    expected.push((RestartStatus::Failed, 5));
    assert_eq!(seq, expected);

    // Never restarted automatically once failed.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(starts.count(), 6);
}

#[test]
fn backoff_is_capped_at_the_maximum() {
    let s = Settings {
        max_restarts: 10,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(10),
        healthy_reset: Duration::from_secs(300),
        heartbeat_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(5),
    };
    let seq: Vec<u64> = (0..7).map(|n| s.backoff(n).as_secs()).collect();
    assert_eq!(seq, vec![1, 2, 4, 8, 10, 10, 10]);
    assert_eq!(s.backoff(u32::MAX).as_secs(), 10);
}

#[tokio::test(start_paused = true)]
async fn healthy_run_resets_restart_count() {
    let crashes_left = Arc::new(AtomicU32::new(2));
    let sup = supervisor(&config(5));
    let left = crashes_left.clone();
    sup.register(WorkerSpec::new("w", false, move |ctx| {
        let left = left.clone();
        async move {
            if left.fetch_sub(1, Ordering::SeqCst) > 0 {
                return Err(WorkerError::new("boom"));
            }
            while ctx.idle(Duration::from_secs(10)).await {}
            Ok(())
        }
    }))
    .expect("register");
    sup.start_all();
    until(&sup, "w", |w| {
        w.status == WorkerStatus::Running && w.restart_count == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(299)).await;
    assert_eq!(worker(&sup.status(), "w").restart_count, 2);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w = worker(&sup.status(), "w").clone();
    assert_eq!((w.status, w.restart_count), (WorkerStatus::Running, 0));
}

#[tokio::test(start_paused = true)]
async fn missed_heartbeat_is_a_crash() {
    let sup = supervisor(&config(5));
    sup.register(WorkerSpec::new("stuck", false, |_ctx| async move {
        std::future::pending::<()>().await;
        Ok(())
    }))
    .expect("register");
    sup.start_all();
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert_eq!(worker(&sup.status(), "stuck").status, WorkerStatus::Running);
    until(&sup, "stuck", |w| w.last_crashed_at.is_some()).await;
    let w = worker(&sup.status(), "stuck").clone();
    assert_eq!(w.error.as_deref(), Some("heartbeat timeout"));
    assert_eq!(w.status, WorkerStatus::Restarting);
}

#[tokio::test(start_paused = true)]
async fn beating_worker_is_not_timed_out() {
    let sup = supervisor(&config(5));
    sup.register(well_behaved("good")).expect("register");
    sup.start_all();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let w = worker(&sup.status(), "good").clone();
    assert_eq!((w.status, w.last_crashed_at), (WorkerStatus::Running, None));
}

#[tokio::test(start_paused = true)]
async fn stop_during_backoff_cancels_pending_restart() {
    let starts = Starts::default();
    let sup = supervisor(&config(5));
    sup.register(always_failing(starts.clone()))
        .expect("register");
    sup.start_all();
    until(&sup, "flaky", |w| w.status == WorkerStatus::Restarting).await;
    sup.stop_worker("flaky")
        .await
        .expect("stop from restarting");
    assert_eq!(worker(&sup.status(), "flaky").status, WorkerStatus::Stopped);
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(starts.count(), 1, "no restart after stop");
    assert_eq!(worker(&sup.status(), "flaky").status, WorkerStatus::Stopped);
}

#[tokio::test(start_paused = true)]
async fn reset_of_failed_worker_restarts_it() {
    let starts = Starts::default();
    let sup = supervisor(&config(0));
    sup.register(always_failing(starts.clone()))
        .expect("register");
    sup.start_all();
    until(&sup, "flaky", |w| w.status == WorkerStatus::Failed).await;
    assert_eq!(starts.count(), 1);
    sup.reset_worker("flaky").expect("reset");
    // It runs again (and, with max_restarts 0, fails again at once).
    until(&sup, "flaky", |_| starts.count() == 2).await;
    let newest = &sup.history(Some("flaky"), 10, 0).items;
    assert!(newest.iter().any(|e| e.status == RestartStatus::Manual));
}

#[tokio::test(start_paused = true)]
async fn stop_waits_for_grace_then_aborts_a_worker_that_ignores_cancellation() {
    let sup = supervisor(&config(5));
    sup.register(WorkerSpec::new("deaf", false, |ctx| async move {
        loop {
            ctx.beat();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }))
    .expect("register");
    sup.start_all();
    let t0 = Instant::now();
    sup.stop_worker("deaf").await.expect("stop");
    let waited = t0.elapsed().as_secs_f64();
    assert!((waited - 5.0).abs() < 0.1, "waited {waited}");
    assert_eq!(worker(&sup.status(), "deaf").status, WorkerStatus::Stopped);
}

#[tokio::test(start_paused = true)]
async fn panic_and_unexpected_return_are_crashes() {
    let sup = supervisor(&config(5));
    sup.register(WorkerSpec::new("panicky", false, |_ctx| async move {
        panic!("boom");
    }))
    .expect("register");
    sup.register(WorkerSpec::new(
        "quitter",
        false,
        |_ctx| async move { Ok(()) },
    ))
    .expect("register");
    sup.start_all();
    until(&sup, "panicky", |w| w.error.is_some()).await;
    until(&sup, "quitter", |w| w.error.is_some()).await;
    let st = sup.status();
    assert_eq!(worker(&st, "panicky").error.as_deref(), Some("panic: boom"));
    assert_eq!(
        worker(&st, "quitter").error.as_deref(),
        Some("worker exited unexpectedly")
    );
}

#[tokio::test(start_paused = true)]
async fn state_conflicts_and_bad_names_are_refused() {
    let sup = supervisor(&config(5));
    sup.register(well_behaved("good")).expect("register");
    assert!(matches!(
        sup.register(well_behaved("good")),
        Err(SupervisorError::Conflict(_))
    ));
    assert_eq!(
        sup.stop_worker("good").await,
        Err(SupervisorError::Conflict(
            "Worker 'good' is not running".into()
        ))
    );
    sup.start_worker("good").expect("start from stopped");
    assert_eq!(
        sup.start_worker("good"),
        Err(SupervisorError::Conflict(
            "Worker 'good' is already running".into()
        ))
    );
    assert!(matches!(
        sup.start_worker("1bad"),
        Err(SupervisorError::InvalidName(_))
    ));
    assert!(matches!(
        sup.reset_worker("bad-name"),
        Err(SupervisorError::InvalidName(_))
    ));
    assert!(matches!(
        sup.start_worker("nobody"),
        Err(SupervisorError::UnknownWorker(_))
    ));
    sup.restart_worker("good")
        .await
        .expect("restart from running");
    let w = worker(&sup.status(), "good").clone();
    assert_eq!((w.status, w.restart_count), (WorkerStatus::Running, 0));
    assert_eq!(
        sup.history(None, 10, 0).items[0].status,
        RestartStatus::Manual
    );

    sup.shutdown().await;
    assert_eq!(worker(&sup.status(), "good").status, WorkerStatus::Stopped);
    assert_eq!(sup.start_worker("good"), Err(SupervisorError::NotRunning));
    assert_eq!(
        sup.stop_worker("good").await,
        Err(SupervisorError::NotRunning)
    );
    assert_eq!(sup.reset_worker("good"), Err(SupervisorError::NotRunning));
}

#[tokio::test(start_paused = true)]
async fn stop_from_failed_is_refused_and_start_from_failed_resets_count() {
    let starts = Starts::default();
    let sup = supervisor(&config(3));
    sup.register(always_failing(starts.clone()))
        .expect("register");
    sup.start_all();
    until(&sup, "flaky", |w| w.status == WorkerStatus::Failed).await;
    assert_eq!(starts.count(), 4, "the first start and three restarts");
    assert_eq!(
        sup.stop_worker("flaky").await,
        Err(SupervisorError::Conflict(
            "Worker 'flaky' is not running".into()
        ))
    );
    sup.start_worker("flaky").expect("start from failed");
    until(&sup, "flaky", |w| {
        starts.count() > 4 && w.status == WorkerStatus::Failed
    })
    .await;
    // With the count back at 0 the manual start earns three restarts again; had it
    // kept 3, the first crash would have failed the worker at once (5 starts).
    assert_eq!(starts.count(), 8, "the count restarted from 0");
    assert_eq!(worker(&sup.status(), "flaky").restart_count, 3);
}

#[tokio::test(start_paused = true)]
async fn every_state_change_is_published() {
    let bus = EventBus::new();
    let mut rx = bus.subscribe();
    let sup = Supervisor::new(&config(5), Arc::new(Metrics::new()), bus);
    sup.register(well_behaved("good")).expect("register");
    sup.start_all();
    sup.stop_worker("good").await.expect("stop");
    let mut seen = Vec::new();
    while let Ok(ev) = rx.try_recv() {
        assert_eq!(ev.kind().name(), "worker.status_changed");
        seen.push(ev.data()["status"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seen, vec!["running", "stopped"]);
}
