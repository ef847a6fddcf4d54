//! NVML device 0, when `libnvidia-ml` can be loaded at run time (the library is
//! opened dynamically, so the build never needs CUDA). `None` otherwise. Blocking.

use std::sync::OnceLock;

use super::GpuStats;

const GB: f64 = 1024.0 * 1024.0 * 1024.0;

fn nvml() -> Option<&'static nvml_wrapper::Nvml> {
    static NVML: OnceLock<Option<nvml_wrapper::Nvml>> = OnceLock::new();
    NVML.get_or_init(|| nvml_wrapper::Nvml::init().ok())
        .as_ref()
}

pub fn sample() -> Option<GpuStats> {
    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    let device = nvml()?.device_by_index(0).ok()?;
    let memory = device.memory_info().ok()?;
    let (used, total) = (memory.used as f64, memory.total as f64);
    Some(GpuStats {
        name: device.name().unwrap_or_else(|_| "unknown".into()),
        utilization: device.utilization_rates().map_or(0.0, |u| f64::from(u.gpu)),
        vram_used_gb: super::host::round2(used / GB),
        vram_total_gb: super::host::round2(total / GB),
        temperature: device
            .temperature(TemperatureSensor::Gpu)
            .map_or(0, i64::from),
        power_watts: device.power_usage().map_or(0, |mw| i64::from(mw / 1000)),
        vram_percent: if total > 0.0 {
            super::host::round2(used / total * 100.0)
        } else {
            0.0
        },
    })
}
