//! NVML device 0, when `libnvidia-ml` can be loaded at run time (the library is
//! opened dynamically, so the build never needs CUDA). `None` otherwise. Blocking.
//!
//! Reading (NVML, [`read`]) and what is made of it ([`GpuReading::stats`]) are apart,
//! so the conversion is tested on a recorded answer on machines without a GPU.

use std::sync::OnceLock;

use super::snapshot::GpuStats;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What NVML answers for one device, in its own units. A part it cannot give is
/// `None` (consumer cards report no power draw, some no utilisation).
#[derive(Debug, Clone, PartialEq)]
pub struct GpuReading {
    pub name: Option<String>,
    /// Percent of the last sample period the GPU was busy.
    pub utilization_percent: Option<u32>,
    pub memory_used_bytes: u64,
    pub memory_total_bytes: u64,
    pub temperature_celsius: Option<u32>,
    pub power_milliwatts: Option<u32>,
}

impl GpuReading {
    /// The performance view of this reading (field names and units of the upstream
    /// clients: GB with two decimals, whole degrees and watts; unknown parts 0).
    pub fn stats(&self) -> GpuStats {
        let (used, total) = (
            self.memory_used_bytes as f64,
            self.memory_total_bytes as f64,
        );
        GpuStats {
            name: self.name.clone().unwrap_or_else(|| "unknown".into()),
            utilization: self.utilization_percent.map_or(0.0, f64::from),
            vram_used_gb: super::host::round2(used / GB),
            vram_total_gb: super::host::round2(total / GB),
            temperature: self.temperature_celsius.map_or(0, i64::from),
            power_watts: self.power_milliwatts.map_or(0, |mw| i64::from(mw / 1000)),
            vram_percent: if total > 0.0 {
                super::host::round2(used / total * 100.0)
            } else {
                0.0
            },
        }
    }
}

fn nvml() -> Option<&'static nvml_wrapper::Nvml> {
    static NVML: OnceLock<Option<nvml_wrapper::Nvml>> = OnceLock::new();
    NVML.get_or_init(|| match nvml_wrapper::Nvml::init() {
        Ok(n) => Some(n),
        Err(e) => {
            // Said once: without it the performance view's gpu figures stay empty.
            tracing::info!(error = %e, "no GPU statistics: NVIDIA's NVML cannot be loaded (no NVIDIA driver here; under the systemd unit, PrivateDevices=yes hides the GPU: see deploy/watchpost.service)");
            None
        }
    })
    .as_ref()
}

/// Device 0 as NVML reports it, or `None` without NVML or a device.
pub fn read() -> Option<GpuReading> {
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    let device = nvml()?.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    Some(GpuReading {
        name: device.name().ok(),
        utilization_percent: device.utilization_rates().ok().map(|u| u.gpu),
        memory_used_bytes: memory.used,
        memory_total_bytes: memory.total,
        temperature_celsius: device.temperature(TemperatureSensor::Gpu).ok(),
        power_milliwatts: device.power_usage().ok(),
    })
}

pub fn sample() -> Option<GpuStats> {
    read().map(|r| r.stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Recorded from an RTX 4090 running the detector and the LLM
    /// (`nvidia-smi --query-gpu=name,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,nounits`:
    /// `NVIDIA GeForce RTX 4090, 37, 9216, 24564, 61, 212.34`, memory in MiB).
    fn rtx_4090() -> GpuReading {
        GpuReading {
            name: Some("NVIDIA GeForce RTX 4090".into()),
            utilization_percent: Some(37),
            memory_used_bytes: 9216 * 1024 * 1024,
            memory_total_bytes: 24564 * 1024 * 1024,
            temperature_celsius: Some(61),
            power_milliwatts: Some(212_340),
        }
    }

    #[test]
    fn a_recorded_reading_becomes_the_upstream_fields() {
        let s = rtx_4090().stats();
        assert_eq!(s.name, "NVIDIA GeForce RTX 4090");
        assert_eq!(s.utilization, 37.0);
        assert_eq!(s.vram_used_gb, 9.0);
        assert_eq!(s.vram_total_gb, 23.99);
        assert_eq!(s.vram_percent, 37.52);
        assert_eq!(s.temperature, 61);
        assert_eq!(s.power_watts, 212);
    }

    #[test]
    fn parts_a_card_does_not_report_are_zero_and_the_shape_stays() {
        let s = GpuReading {
            name: None,
            utilization_percent: None,
            memory_used_bytes: 0,
            memory_total_bytes: 0,
            temperature_celsius: None,
            power_milliwatts: None,
        }
        .stats();
        assert_eq!(
            serde_json::to_value(&s).expect("json"),
            serde_json::json!({
                "name": "unknown", "utilization": 0.0, "vram_used_gb": 0.0,
                "vram_total_gb": 0.0, "temperature": 0, "power_watts": 0, "vram_percent": 0.0
            })
        );
    }
}
