//! Every breaker transition on tokio's paused clock.

use super::*;

fn cfg() -> BreakerConfig {
    BreakerConfig::default() // 5 failures, 30 s, 3 trials, 2 successes
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new("yolo26", &cfg(), Arc::new(Metrics::new()), EventBus::new())
}

const T: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum E {
    Server,
    BadInput,
}

fn is_failure(e: &E) -> bool {
    matches!(e, E::Server)
}

async fn ok(b: &CircuitBreaker) -> Result<(), CallError<E>> {
    b.call(T, is_failure, async { Ok(()) }).await
}

async fn fail(b: &CircuitBreaker) -> Result<(), CallError<E>> {
    b.call(T, is_failure, async { Err(E::Server) }).await
}

async fn open_it(b: &CircuitBreaker) {
    for _ in 0..5 {
        let _ = fail(b).await;
    }
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn opens_at_exactly_the_failure_threshold() {
    let b = breaker();
    for n in 1..=4 {
        assert!(matches!(fail(&b).await, Err(CallError::Inner(E::Server))));
        assert_eq!(b.state(), BreakerState::Closed, "after {n} failures");
    }
    let _ = fail(&b).await;
    assert_eq!(b.state(), BreakerState::Open);
    let snap = b.snapshot();
    assert_eq!((snap.failure_count, snap.total_calls), (5, 5));
    assert!(snap.last_failure.is_some() && snap.last_state_change.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_success_resets_the_consecutive_failures() {
    let b = breaker();
    for _ in 0..4 {
        let _ = fail(&b).await;
    }
    ok(&b).await.expect("success");
    for _ in 0..4 {
        let _ = fail(&b).await;
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn client_errors_do_not_count() {
    let b = breaker();
    for _ in 0..20 {
        let r = b
            .call(T, is_failure, async { Err::<(), _>(E::BadInput) })
            .await;
        assert!(matches!(r, Err(CallError::Inner(E::BadInput))));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().failure_count, 0);
}

#[tokio::test(start_paused = true)]
async fn rejects_while_open_without_calling() {
    let b = breaker();
    open_it(&b).await;
    let called = std::sync::atomic::AtomicBool::new(false);
    let r = b
        .call(T, is_failure, async {
            called.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok::<(), E>(())
        })
        .await;
    assert!(matches!(r, Err(CallError::Rejected(_))));
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(b.snapshot().rejected_calls, 1);
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(matches!(ok(&b).await, Err(CallError::Rejected(_))));
}

#[tokio::test(start_paused = true)]
async fn half_open_after_recovery_then_closes_after_success_threshold() {
    let b = breaker();
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    ok(&b).await.expect("trial 1");
    assert_eq!(b.state(), BreakerState::HalfOpen);
    ok(&b).await.expect("trial 2");
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().failure_count, 0);
}

#[tokio::test(start_paused = true)]
async fn half_open_failure_reopens() {
    let b = breaker();
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    ok(&b).await.expect("trial 1");
    let _ = fail(&b).await;
    assert_eq!(b.state(), BreakerState::Open);
    // The recovery timeout starts again from the re-opening.
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(matches!(ok(&b).await, Err(CallError::Rejected(_))));
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_max_concurrent_trials() {
    let b = Arc::new(breaker());
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut trials = Vec::new();
    for _ in 0..3 {
        let (b, gate) = (b.clone(), gate.clone());
        trials.push(tokio::spawn(async move {
            b.call(T, is_failure, async move {
                gate.notified().await;
                Ok::<(), E>(())
            })
            .await
        }));
    }
    tokio::task::yield_now().await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(
        matches!(ok(&b).await, Err(CallError::Rejected(_))),
        "a fourth trial is rejected"
    );
    gate.notify_waiters();
    for t in trials {
        t.await.expect("join").expect("trial ok");
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_hung_trial_call_times_out_into_open() {
    let b = breaker();
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    let r = b
        .call(
            Duration::from_secs(5),
            is_failure,
            std::future::pending::<Result<(), E>>(),
        )
        .await;
    assert!(matches!(r, Err(CallError::Timeout(_))));
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_trial_frees_its_slot() {
    let b = Arc::new(breaker());
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    for _ in 0..3 {
        let b2 = b.clone();
        let h = tokio::spawn(async move {
            b2.call(T, is_failure, std::future::pending::<Result<(), E>>())
                .await
        });
        tokio::task::yield_now().await;
        h.abort();
        let _ = h.await;
    }
    ok(&b).await.expect("slot was freed");
}

#[tokio::test(start_paused = true)]
async fn reset_from_each_state_closes_and_reports_previous() {
    let b = breaker();
    assert_eq!(b.reset(), BreakerState::Closed);
    open_it(&b).await;
    assert_eq!(b.reset(), BreakerState::Open);
    assert_eq!(b.state(), BreakerState::Closed);
    ok(&b).await.expect("closed again");
    open_it(&b).await;
    tokio::time::advance(Duration::from_secs(30)).await;
    ok(&b).await.expect("trial");
    assert_eq!(b.reset(), BreakerState::HalfOpen);
    assert_eq!(b.snapshot().failure_count, 0);
}

#[tokio::test(start_paused = true)]
async fn transitions_are_published() {
    let bus = EventBus::new();
    let mut rx = bus.subscribe();
    let b = CircuitBreaker::new("nemotron", &cfg(), Arc::new(Metrics::new()), bus);
    open_it(&b).await;
    b.reset();
    let a = rx.try_recv().expect("open event");
    assert_eq!(a.kind().name(), "circuit_breaker.state_changed");
    assert_eq!(
        (
            a.data()["previous_state"].as_str(),
            a.data()["new_state"].as_str()
        ),
        (Some("closed"), Some("open"))
    );
    let c = rx.try_recv().expect("close event");
    assert_eq!(c.data()["new_state"], "closed");
}

#[test]
fn lookup_validates_names_and_lists_valid_ones() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("rt");
    let _g = rt.enter();
    let reg = BreakerRegistry::new(
        &["yolo26", "nemotron"],
        &cfg(),
        Arc::new(Metrics::new()),
        EventBus::new(),
    );
    assert!(reg.lookup("yolo26").is_ok());
    assert_eq!(
        reg.lookup("nope").err(),
        Some(BreakerError::Unknown(
            "nope".into(),
            "yolo26, nemotron".into()
        ))
    );
    assert!(matches!(
        reg.lookup("bad name!"),
        Err(BreakerError::InvalidName(_))
    ));
    assert!(matches!(
        reg.lookup(&"x".repeat(65)),
        Err(BreakerError::InvalidName(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn probes_are_blocked_only_inside_the_recovery_timeout_and_half_open_shows_at_once() {
    let b = breaker();
    assert!(!b.blocks_probe(), "closed: probes call the service");
    open_it(&b).await;
    let calls = b.snapshot().total_calls;
    assert!(b.blocks_probe(), "open: unhealthy without a call");
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(b.blocks_probe());
    tokio::time::advance(Duration::from_secs(1)).await;
    let snap = b.snapshot();
    assert_eq!(
        snap.state,
        BreakerState::HalfOpen,
        "half_open as soon as the recovery timeout has passed, before any call"
    );
    assert!(snap.opened_at.is_some());
    assert!(
        !b.blocks_probe(),
        "a trial would be allowed: probes call again"
    );
    assert_eq!(
        b.snapshot().total_calls,
        calls,
        "looking at the breaker is not a call"
    );
    // The trial slots are all still free for real work.
    for _ in 0..3 {
        ok(&b).await.expect("trial admitted");
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert!(b.snapshot().opened_at.is_none());
}
