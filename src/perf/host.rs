//! Host CPU and memory (sysinfo) and the disk of the camera folder's file system
//! (`storage::disk_usage`). Blocking: the sampler calls it on the blocking pool.

use std::path::Path;
use std::sync::Mutex;

use super::snapshot::HostStats;
use crate::storage::disk_usage;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Keeps the sysinfo state between samples (CPU usage is measured between refreshes).
pub struct Host {
    system: Mutex<Option<sysinfo::System>>,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            system: Mutex::new(sysinfo::System::new().ok()),
        }
    }
}

impl Host {
    /// `None` when sysinfo cannot read this system.
    pub fn sample(&self, data_dir: &Path) -> Option<HostStats> {
        let mut guard = self.system.lock().unwrap_or_else(|p| p.into_inner());
        let sys = guard.as_mut()?;
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let total = sys.total_memory() as f64;
        let used = sys.used_memory() as f64;
        let disk = disk_usage(data_dir);
        Some(HostStats {
            cpu_percent: round2(f64::from(sys.global_cpu_usage())),
            ram_used_gb: round2(used / GB),
            ram_total_gb: round2(total / GB),
            ram_percent: if total > 0.0 {
                round2(used / total * 100.0)
            } else {
                0.0
            },
            disk_used_gb: disk.map(|(used, _)| round2(used / GB)),
            disk_total_gb: disk.map(|(_, total)| round2(total / GB)),
            disk_percent: disk
                .filter(|(_, total)| *total > 0.0)
                .map(|(used, total)| round2(used / total * 100.0)),
        })
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_memory_and_a_disk() {
        let h = Host::default();
        let s = h
            .sample(Path::new("/tmp/does/not/exist/yet"))
            .expect("sysinfo works here");
        assert!(s.ram_total_gb > 0.0 && (0.0..=100.0).contains(&s.ram_percent));
        assert!(s.disk_total_gb.is_some_and(|t| t > 0.0));
    }
}
