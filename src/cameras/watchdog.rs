//! The `camera_watchdog` worker: reads back the stored cameras (until it can), judges
//! every camera every `cameras.check_interval_seconds`, and writes what changed: at the
//! next check after a camera appears, changes status or is removed, otherwise every
//! `cameras.persist_interval_seconds`, and when it stops.

use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use super::registry::CameraRegistry;
use crate::config::{secs, CamerasConfig};
use crate::names::workers;
use crate::supervisor::{WorkerContext, WorkerError, WorkerSpec};

/// The longest the last write may take when the worker stops.
const FINAL_WRITE: Duration = Duration::from_secs(2);

pub struct Watchdog {
    registry: Arc<CameraRegistry>,
    check_every: Duration,
    persist_every: Duration,
}

impl Watchdog {
    pub fn new(cfg: &CamerasConfig, registry: Arc<CameraRegistry>) -> Arc<Self> {
        Arc::new(Self {
            registry,
            check_every: secs(cfg.check_interval_seconds),
            persist_every: secs(cfg.persist_interval_seconds),
        })
    }

    pub fn worker(self: &Arc<Self>, critical: bool) -> WorkerSpec {
        WorkerSpec::shared(
            workers::CAMERA_WATCHDOG,
            critical,
            Arc::clone(self),
            |me, ctx| async move { me.run(&ctx).await },
        )
    }

    async fn run(&self, ctx: &WorkerContext) -> Result<(), WorkerError> {
        let mut next_write = Instant::now() + self.persist_every;
        let mut load_failed_logged = false;
        // The registry's version moves when a camera appears, changes status or is
        // removed: those are written at once, the counts and rhythm with the interval.
        let mut written_version = None;
        loop {
            if !self.registry.loaded() {
                match ctx
                    .beat_while(Duration::from_secs(15), self.registry.load())
                    .await
                {
                    Ok(n) => tracing::info!(cameras = n, "stored cameras read back"),
                    Err(e) if !load_failed_logged => {
                        load_failed_logged = true;
                        tracing::warn!(error = %e, "cannot read the stored cameras yet; their alerts wait until they are read");
                    }
                    Err(_) => {}
                }
            }
            self.registry.check();
            let version = self.registry.version();
            if self.registry.loaded()
                && (Instant::now() >= next_write || written_version != Some(version))
            {
                next_write = Instant::now() + self.persist_every;
                match ctx
                    .beat_while(Duration::from_secs(15), self.registry.flush())
                    .await
                {
                    Ok(_) => written_version = Some(version),
                    Err(e) => {
                        tracing::debug!(error = %e, "cameras not written; kept for the next write")
                    }
                }
            }
            if !ctx.idle(self.check_every).await {
                if let Ok(Err(e)) = tokio::time::timeout(FINAL_WRITE, self.registry.flush()).await {
                    tracing::warn!(error = %e, "cameras not written at stop; the last minute of what they taught is lost");
                }
                return Ok(());
            }
        }
    }
}
