//! `cmkm devices`: what `--device` can name on this machine.

use anyhow::Result;

/// Prints the CPU and every GPU adapter, numbered for `--device gpu:N`
/// (none in a binary built without the `gpu` feature, which it says).
pub fn list(json: bool) -> Result<i32> {
    let cpu = crate::harness::store::Hardware::current();
    let adapters = crate::device::adapters();
    if json {
        let value = serde_json::json!({ "cpu": cpu.cpu, "cores": cpu.cores, "gpu_backend": crate::device::GPU_BACKEND, "gpus": adapters });
        outln!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(0);
    }
    outln!("cpu     {} ({} cores), burn's CPU backend (flex): the default", cpu.cpu, cpu.cores);
    for a in &adapters {
        let note = if a.fallback { "  (software or OpenGL fallback: only as --device gpu:N)" } else { "" };
        outln!("gpu:{:<3} {}{note}", a.index, a.describe());
    }
    if !crate::device::GPU_BACKEND {
        outln!("no GPU backend in this build: `make devices` (or `cargo run --release --features gpu -- devices`) lists the GPUs");
    } else if adapters.is_empty() {
        outln!("no GPU adapter: wgpu finds no Vulkan, Metal or DirectX 12 driver (Debian: a GPU driver, or mesa-vulkan-drivers for the software one)");
    } else if let Some(first) = adapters.iter().find(|a| !a.fallback) {
        outln!("--device gpu picks gpu:{}", first.index);
    } else {
        outln!("--device gpu finds no hardware GPU here; --device gpu:N runs on a fallback by name");
    }
    Ok(0)
}
