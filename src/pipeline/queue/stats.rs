//! Live counters of the queue fallback (memory + disk), read by the degradation
//! snapshot and the metrics. The queue layer is the only writer.

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct FallbackStats {
    inner: Mutex<Counts>,
}

#[derive(Default, Clone)]
struct Counts {
    memory: BTreeMap<String, u64>,
    disk: BTreeMap<String, u64>,
}

impl FallbackStats {
    pub fn set(&self, queue: &str, memory: u64, disk: u64) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.memory.insert(queue.to_string(), memory);
        c.disk.insert(queue.to_string(), disk);
    }

    /// Items held in memory across all queues.
    pub fn memory_total(&self) -> u64 {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.memory.values().sum()
    }

    /// Queue name → items in the on-disk spool, for queues that hold any.
    pub fn disk_by_queue(&self) -> BTreeMap<String, u64> {
        let c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        c.disk
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}
