//! Where the tensors live: burn's CPU backend (flex, the default) or a GPU
//! through burn's wgpu backend (Vulkan, Metal, DirectX 12), chosen at run
//! time with `--device` as a property of the machine, not of the suite.
//! The GPU backend is the cargo feature `gpu` (`make build DEVICE=gpu`):
//! it is half of a fresh build's time, so the default build leaves it out,
//! and a binary without it says so when asked for a GPU.
//!
//! - `cpu`: flex, with the hand-written kernels of [`crate::models::flex_kernels`].
//! - `gpu`: the first hardware adapter of the graphics API wgpu settles on
//!   (Vulkan where it exists). A software rasterizer (Mesa's lavapipe) or an
//!   OpenGL-only fallback is refused here: the user names it instead.
//! - `gpu:N`: adapter `N` of `cmkm devices`'s list, whatever it is (this is
//!   how CI runs on lavapipe).
//!
//! Every random draw (parameter initialisation, dropout seeds) comes from
//! the CPU generator whatever the device: a model for a GPU is built and
//! initialised on the CPU, then moved ([`build`]). So a GPU run starts from
//! the very weights the CPU run starts from, and the two differ only by
//! floating-point rounding.
//!
//! A process selects its device once ([`select`]); [`devices`] hands it out.
//! The CPU run ids stand: only a GPU adds its adapter to a run's id
//! ([`run_key`]) and record.

use anyhow::{bail, Context as _, Result};
use burn::module::Module;
use burn::prelude::*;
use std::sync::{Mutex, OnceLock};

#[cfg(feature = "gpu")]
mod wgpu_adapters;

/// What `--device` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// burn's CPU backend (flex).
    #[default]
    Cpu,
    /// The first hardware GPU adapter.
    Gpu,
    /// Adapter `N` of [`adapters`], software ones included.
    Adapter(usize),
    /// CUDA device `N`, in a binary built with the `cuda` feature.
    Cuda(usize),
}

impl DeviceChoice {
    /// How the choice is written on a command line (`cpu`, `gpu`, `gpu:N`).
    pub fn arg(&self) -> String {
        match self {
            DeviceChoice::Cpu => "cpu".into(),
            DeviceChoice::Gpu => "gpu".into(),
            DeviceChoice::Adapter(n) => format!("gpu:{n}"),
            DeviceChoice::Cuda(n) => format!("cuda:{n}"),
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "gpu" => Ok(DeviceChoice::Gpu),
            other => match (other.strip_prefix("gpu:").map(str::parse::<usize>), other.strip_prefix("cuda:").map(str::parse::<usize>)) {
                (Some(Ok(n)), _) => Ok(DeviceChoice::Adapter(n)),
                (_, Some(Ok(n))) => Ok(DeviceChoice::Cuda(n)),
                _ => Err(format!("device {s:?}: expected cpu, gpu or gpu:N (N from `cmkm devices`), or cuda:N")),
            },
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.arg())
    }
}

/// One adapter wgpu reaches, as `cmkm devices` lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Adapter {
    /// Position in the list (`--device gpu:N`).
    pub index: usize,
    pub name: String,
    /// Graphics API: `Vulkan`, `Metal`, `Dx12`, `Gl`.
    pub api: String,
    /// `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` (a software
    /// rasterizer), `Other`.
    pub kind: String,
    pub driver: String,
    /// A software rasterizer (lavapipe, llvmpipe, WARP) or an OpenGL
    /// fallback: correct, but no GPU.
    pub fallback: bool,
    /// The burn device that reaches it (`None`: a type burn cannot name).
    #[serde(skip)]
    #[cfg_attr(not(feature = "gpu"), allow(dead_code))]
    burn_kind: Option<DeviceKind>,
}

impl Adapter {
    /// `llvmpipe (LLVM 15.0.6, 256 bits) [Vulkan Cpu, llvmpipe Mesa 22.3.6]`.
    pub fn describe(&self) -> String {
        let driver = if self.driver.is_empty() { String::new() } else { format!(", {}", self.driver) };
        format!("{} [{} {}{driver}]", self.name, self.api, self.kind)
    }
}

/// Whether this binary holds the GPU backend (the `gpu` feature).
pub const GPU_BACKEND: bool = cfg!(feature = "gpu");

/// The error for a GPU asked of a binary built without the GPU backend.
#[cfg(not(feature = "gpu"))]
fn no_gpu_backend(choice: DeviceChoice) -> anyhow::Error {
    anyhow::anyhow!(
        "--device {choice}: this cmkm was built without the GPU backend: `make build DEVICE=gpu` \
         (or `cargo build --release --features gpu`) builds one with it (README, \"On a GPU\")"
    )
}

/// The adapters `--device gpu:N` can name: those of the graphics API
/// burn's wgpu runtime settles on, in its order; none in a binary built
/// without the GPU backend.
pub fn adapters() -> Vec<Adapter> {
    #[cfg(feature = "gpu")]
    return wgpu_adapters::list();
    #[cfg(not(feature = "gpu"))]
    Vec::new()
}

/// The device a process computes on, once opened.
#[derive(Debug, Clone)]
pub struct Selected {
    pub choice: DeviceChoice,
    /// Plain device (evaluation, frozen encoders).
    pub device: Device,
    /// The GPU adapter, `None` on the CPU.
    pub adapter: Option<Adapter>,
}

/// What `--device` chose, with the adapter `gpu:N` names (listed once, at
/// [`select`], and opened from that listing).
#[derive(Debug)]
struct Choice {
    choice: DeviceChoice,
    listed: Option<Adapter>,
}

impl Choice {
    /// A software or OpenGL adapter named with `gpu:N`.
    fn fallback(&self) -> bool {
        self.listed.as_ref().is_some_and(|a| a.fallback)
    }
}

/// The choice of a process that selected none.
static CPU: Choice = Choice { choice: DeviceChoice::Cpu, listed: None };
static CHOICE: OnceLock<Choice> = OnceLock::new();
static OPENED: OnceLock<Selected> = OnceLock::new();

/// Records the device `choice` names for this process, without opening it
/// (planning and reporting on a machine without that GPU, a cluster's login
/// node, need only its kind). Once per process: the same choice again is a
/// no-op, another one an error. `gpu:N` must name an adapter of
/// [`adapters`].
pub fn select(choice: DeviceChoice) -> Result<()> {
    if let Some(opened) = OPENED.get().filter(|s| s.choice != choice) {
        bail!("this process already computes on {}; cannot switch to {choice}", opened.choice);
    }
    if let Some(chosen) = CHOICE.get() {
        if chosen.choice != choice {
            bail!("this process already chose {}; cannot switch to {choice}", chosen.choice);
        }
        return Ok(());
    }
    #[cfg(not(feature = "gpu"))]
    if matches!(choice, DeviceChoice::Gpu | DeviceChoice::Adapter(_)) {
        return Err(no_gpu_backend(choice));
    }
    let listed = match choice {
        DeviceChoice::Cpu | DeviceChoice::Gpu | DeviceChoice::Cuda(_) => None,
        DeviceChoice::Adapter(n) => Some(listed(n)?),
    };
    let chosen = CHOICE.get_or_init(|| Choice { choice, listed });
    if chosen.choice != choice {
        bail!("this process already chose {}; cannot switch to {choice}", chosen.choice);
    }
    Ok(())
}

/// The device this process was told to compute on.
pub fn chosen() -> DeviceChoice {
    choice().choice
}

/// The choice made, the CPU until [`select`] says otherwise (reading it
/// fixes nothing: only [`open`] does).
fn choice() -> &'static Choice {
    CHOICE.get().unwrap_or(&CPU)
}

fn listed(n: usize) -> Result<Adapter> {
    let all = adapters();
    let count = all.len();
    all.into_iter().nth(n).with_context(|| format!("--device gpu:{n}: no such adapter ({count} found; `cmkm devices` lists them)"))
}

/// Opens the selected device (the CPU where none was selected): once per
/// process, and before the first computation, so that a GPU that is not
/// there is an error at the start, not a panic mid-run.
pub fn open() -> Result<&'static Selected> {
    if let Some(s) = OPENED.get() {
        return Ok(s);
    }
    // One thread opens it: wgpu refuses a second registration of a device
    // (threads that reach their first computation together, as tests do).
    static OPENING: Mutex<()> = Mutex::new(());
    let _opening = OPENING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(s) = OPENED.get() {
        return Ok(s);
    }
    let opened = open_choice(choice())?;
    Ok(OPENED.get_or_init(|| opened))
}

/// The GPU adapter this process computes on, where it has opened one.
pub fn opened_adapter() -> Option<&'static Adapter> {
    OPENED.get().and_then(|s| s.adapter.as_ref())
}

/// Whether the opened GPU is Mesa's llvmpipe (lavapipe, or its OpenGL
/// twin), which ends a shader invocation's loops after 65 535 iterations
/// in all, silently: long reductions there must be cut up
/// ([`crate::models::row_blocks`]).
pub fn loops_limited() -> bool {
    opened_adapter().is_some_and(|a| a.name.starts_with("llvmpipe"))
}

/// The opened device. Opens it first where needed, and panics where that
/// fails: commands that compute call [`open`] at their start.
pub fn selected() -> &'static Selected {
    open().unwrap_or_else(|e| panic!("{e:#}"))
}

fn open_choice(chosen: &Choice) -> Result<Selected> {
    let choice = chosen.choice;
    let adapter = match (choice, &chosen.listed) {
        (DeviceChoice::Cpu, _) => return Ok(Selected { choice, device: Device::flex(), adapter: None }),
        (DeviceChoice::Gpu, _) => hardware_adapter()?,
        (DeviceChoice::Adapter(_), Some(listed)) => listed.clone(),
        (DeviceChoice::Adapter(n), None) => listed(n)?,
        (DeviceChoice::Cuda(n), _) => return open_cuda(n),
    };
    let device = open_adapter(choice, &adapter)?;
    Ok(Selected { choice, device, adapter: Some(adapter) })
}

#[cfg(feature = "gpu")]
fn open_adapter(choice: DeviceChoice, adapter: &Adapter) -> Result<Device> {
    wgpu_adapters::open(choice, adapter)
}

#[cfg(not(feature = "gpu"))]
fn open_adapter(choice: DeviceChoice, _: &Adapter) -> Result<Device> {
    Err(no_gpu_backend(choice))
}

/// CUDA device `n` (burn's `cuda` feature; never built here, see README).
#[cfg(feature = "cuda")]
fn open_cuda(n: usize) -> Result<Selected> {
    let adapter =
        Adapter { index: n, name: format!("CUDA device {n}"), api: "CUDA".into(), kind: "Gpu".into(), driver: String::new(), fallback: false, burn_kind: None };
    Ok(Selected { choice: DeviceChoice::Cuda(n), device: Device::cuda(n), adapter: Some(adapter) })
}

#[cfg(not(feature = "cuda"))]
fn open_cuda(n: usize) -> Result<Selected> {
    bail!("--device cuda:{n}: this binary was built without the `cuda` feature (README, \"On a GPU\")")
}

/// The first hardware adapter; an error naming what exists otherwise.
fn hardware_adapter() -> Result<Adapter> {
    let all = adapters();
    if let Some(a) = all.iter().find(|a| !a.fallback) {
        return Ok(a.clone());
    }
    if all.is_empty() {
        bail!("--device gpu: wgpu finds no adapter (no Vulkan, Metal or DirectX 12 driver; on Debian, a GPU driver or `mesa-vulkan-drivers`)");
    }
    let list: Vec<String> = all.iter().map(|a| format!("gpu:{} {}", a.index, a.describe())).collect();
    bail!(
        "--device gpu: no hardware GPU, only software or OpenGL fallbacks: {}; name one (e.g. --device gpu:{}) to run there anyway",
        list.join("; "),
        all[0].index
    )
}

/// The training (autodiff) and evaluation devices of this process.
pub fn devices() -> (Device, Device) {
    crate::training::allocator::keep_freed_memory();
    let base = selected().device.clone();
    (base.clone().autodiff(), base)
}

/// Whether `device` is burn's CPU backend (with or without autodiff).
pub fn is_host(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// The CPU device whose generator stands in for `device`'s: `device` itself
/// on the CPU, else flex (with autodiff where `device` has it).
pub fn generator(device: &Device) -> Device {
    match (is_host(device), device.is_autodiff()) {
        (true, _) => device.clone(),
        (false, true) => Device::flex().autodiff(),
        (false, false) => Device::flex(),
    }
}

/// Waits for the work queued on `device` (a GPU runs asynchronously), so
/// that a timing covers it; nothing to wait for on the CPU.
pub fn sync(device: &Device) -> Result<()> {
    if is_host(device) {
        return Ok(());
    }
    device.sync().map_err(|e| anyhow::anyhow!("{}: {e:?}", describe()))
}

/// Runs `a` and `b` side by side on CPU threads where `device` is the CPU
/// (each layer uses few cores); one after the other on a GPU, which runs
/// asynchronously anyway and whose work two threads would submit in
/// either order.
pub fn join<A: Send, B: Send>(device: &Device, a: impl FnOnce() -> A + Send, b: impl FnOnce() -> B + Send) -> (A, B) {
    if is_host(device) {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Seeds the generator every draw for `device` comes from.
pub fn seed(device: &Device, seed: u64) {
    generator(device).seed(seed);
}

/// Whether `CMKM_CPU_AS_GPU=1` asks the CPU to run exactly the code a GPU
/// runs: burn's composed operations instead of cmkm's CPU kernels, and
/// parameters initialised up front in the module's order (see [`build`]).
/// Only the backend's arithmetic then differs, which is how the GPU tests
/// compare the two. Its runs are other runs ([`run_key`]).
pub fn cpu_as_gpu() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("CMKM_CPU_AS_GPU").is_ok_and(|v| v == "1"))
}

/// A model for `device`, built by `make`: on the CPU as it is (each
/// parameter initialised when first used); elsewhere built on the CPU,
/// every parameter initialised there in the module's order from the CPU
/// generator, then moved. The two orders differ where a model is not
/// initialised up front (supervised and single-modality methods, heads), so
/// there a GPU run starts from another draw of the same initialisation.
pub fn build<M: Module>(device: &Device, make: impl FnOnce(&Device) -> Result<M>) -> Result<M> {
    if is_host(device) && !cpu_as_gpu() {
        return make(device);
    }
    let model = make(&generator(device))?;
    crate::models::initialise_parameters(&model);
    if is_host(device) {
        return Ok(model);
    }
    // `fork`, not `to_device`: each parameter becomes a leaf of the target's
    // graph, where `to_device` would chain it to the CPU one (and the second
    // step would find that link's tape consumed).
    Ok(model.fork(device))
}

/// What a GPU adds to a run's id: `gpu`, or `gpu-fallback` for a software
/// or OpenGL adapter named with `gpu:N`; `None` on the CPU, so every CPU
/// run id stands. The kind, not the adapter: planning needs no GPU (a
/// login node plans for its cluster's GPU nodes), and one suite may run on
/// nodes with different cards. The adapter goes into each run's record.
pub fn run_key() -> Option<&'static str> {
    let chosen = choice();
    match chosen.choice {
        DeviceChoice::Cpu if cpu_as_gpu() => Some("cpu-as-gpu"),
        DeviceChoice::Cpu => None,
        _ if chosen.fallback() => Some("gpu-fallback"),
        _ => Some("gpu"),
    }
}

/// "CPU backend" or the GPU adapter, for logs and records.
pub fn describe() -> String {
    match &selected().adapter {
        None => "CPU backend (flex)".into(),
        Some(a) => format!("GPU {}", a.describe()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for (text, choice) in [("cpu", DeviceChoice::Cpu), ("GPU", DeviceChoice::Gpu), ("gpu:2", DeviceChoice::Adapter(2)), ("cuda:0", DeviceChoice::Cuda(0))] {
            let parsed: DeviceChoice = text.parse().unwrap();
            assert_eq!(parsed, choice);
            assert_eq!(parsed.arg().parse::<DeviceChoice>().unwrap(), choice);
        }
        for bad in ["tpu", "gpu:", "gpu:-1", "gpu:x", "cuda"] {
            let err = bad.parse::<DeviceChoice>().unwrap_err();
            assert!(err.contains("expected cpu, gpu or gpu:N"), "{bad}: {err}");
        }
    }

    /// Unit tests never select a device: the CPU adds nothing to run ids.
    #[test]
    fn the_cpu_adds_nothing_to_a_run_id() {
        assert_eq!(choice().choice, DeviceChoice::Cpu);
        if !cpu_as_gpu() {
            assert_eq!(run_key(), None);
        }
    }
}
