//! The GPU adapters burn's wgpu backend reaches, and opening one: the part
//! of [`crate::device`] that only a binary with the `gpu` feature holds.

use super::{Adapter, DeviceChoice};
use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::wgpu::wgpu;

fn adapter(index: usize, info: &wgpu::AdapterInfo, burn_kind: Option<DeviceKind>) -> Adapter {
    let driver = [info.driver.as_str(), info.driver_info.as_str()].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>().join(" ");
    Adapter {
        index,
        name: info.name.clone(),
        api: format!("{:?}", info.backend),
        kind: format!("{:?}", info.device_type),
        driver,
        fallback: info.device_type == wgpu::DeviceType::Cpu || info.backend == wgpu::Backend::Gl,
        burn_kind,
    }
}

/// The graphics APIs in the order wgpu's `Auto` tries them.
const API_ORDER: [wgpu::Backend; 4] = [wgpu::Backend::Vulkan, wgpu::Backend::Metal, wgpu::Backend::Dx12, wgpu::Backend::Gl];

/// The adapters of the graphics API burn's wgpu runtime settles on (the
/// first with a hardware adapter, else the first with any: the rule of
/// cubecl-wgpu's `settle`), in its enumeration order, each with the burn
/// device that reaches it.
pub fn list() -> Vec<Adapter> {
    let enabled = wgpu::Instance::enabled_backend_features();
    let mut software_only: Option<Vec<wgpu::AdapterInfo>> = None;
    for api in API_ORDER.into_iter().filter(|api| enabled.contains((*api).into())) {
        let found = probe(api);
        if found.iter().any(|a| a.device_type != wgpu::DeviceType::Cpu) {
            return with_burn_kinds(found);
        }
        if software_only.is_none() && !found.is_empty() {
            software_only = Some(found);
        }
    }
    software_only.map(with_burn_kinds).unwrap_or_default() // no adapter at all: an empty list
}

fn probe(api: wgpu::Backend) -> Vec<wgpu::AdapterInfo> {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor { backends: api.into(), ..wgpu::InstanceDescriptor::new_without_display_handle() });
    let adapters = futures_lite::future::block_on(instance.enumerate_adapters(api.into()));
    adapters.iter().map(wgpu::Adapter::get_info).collect()
}

/// Numbers each adapter within its type, as burn's `DeviceKind` does
/// (`DiscreteGpu(1)` is the second discrete adapter).
fn with_burn_kinds(infos: Vec<wgpu::AdapterInfo>) -> Vec<Adapter> {
    let mut next = [0usize; 5];
    infos
        .iter()
        .enumerate()
        .map(|(i, info)| {
            // burn's device kinds cannot name an adapter of type `Other`.
            let (slot, make): (usize, fn(usize) -> Option<DeviceKind>) = match info.device_type {
                wgpu::DeviceType::DiscreteGpu => (0, |i| Some(DeviceKind::DiscreteGpu(i))),
                wgpu::DeviceType::IntegratedGpu => (1, |i| Some(DeviceKind::IntegratedGpu(i))),
                wgpu::DeviceType::VirtualGpu => (2, |i| Some(DeviceKind::VirtualGpu(i))),
                wgpu::DeviceType::Cpu => (3, |_| Some(DeviceKind::Cpu)),
                wgpu::DeviceType::Other => (4, |_| None),
            };
            let kind = make(next[slot]);
            next[slot] += 1;
            adapter(i, info, kind)
        })
        .collect()
}

/// Opens `adapter` as burn's wgpu device, checking that wgpu opened that
/// very adapter.
pub fn open(choice: DeviceChoice, adapter: &Adapter) -> Result<Device> {
    let Some(kind) = adapter.burn_kind.clone() else {
        bail!("--device {choice}: {} is of a type burn's wgpu runtime cannot select", adapter.describe());
    };
    let (device, setup) = Device::wgpu_options()
        .device_kind(kind)
        .init_with_setup()
        .map_err(|e| anyhow::anyhow!("--device {choice}: cannot open {}: {e}", adapter.describe()))?;
    let info = setup.adapter.get_info();
    if info.name != adapter.name {
        bail!("--device {choice}: asked for {} but wgpu opened {}", adapter.describe(), info.name);
    }
    Ok(device)
}
