# cmkm: the two commands README promises, plus helpers.
#   make reproduce        the paper's UTD-MHAD suite on the embedded synthetic
#                         data, then its report (hours on a 2-core CPU)
#   make test             the test suite (release mode: training tests need it;
#                         the kernels run twice, the second time with
#                         CMKM_KERNELS_PORTABLE=1 forcing their portable path;
#                         the Slurm tests start one-node clusters on 127.0.0.1,
#                         installing Debian's Slurm first, when run as root;
#                         the report page test in headless Chromium; what
#                         cannot run here, the GPU tests included, is
#                         listed as skipped at the end)
#   make test-gpu         the GPU tests, in a build with the GPU backend, on
#                         any Vulkan adapter (Mesa's software one in CI)
#   make reproduce-slurm  submit the suite to a Slurm cluster
#   make report-archived  the suite's report from its committed run archive
# SUITE= picks another suite, DATA= another dataset declaration, e.g.
#   make reproduce SUITE=experiments/paper-mmact-xsubject.yaml
#   make reproduce DATA=experiments/datasets/utd-mhad.yaml

CARGO ?= cargo
SUITE ?= experiments/paper-utd.yaml
DATA ?=
# DEVICE=gpu computes on the first hardware GPU (wgpu: Vulkan, Metal,
# DirectX 12), DEVICE=gpu:N on adapter N of `cmkm devices`; either also
# builds with the GPU backend (the cargo feature `gpu`), which the default
# CPU build leaves out to build in half the time.
DEVICE ?= cpu
FEATURES = $(if $(filter gpu%,$(DEVICE)),--features gpu,)
QUICK = experiments/quick-utd.yaml
CMKM = $(CARGO) run --release --quiet $(FEATURES) -- --device $(DEVICE)
DATA_ARG = $(if $(DATA),--dataset $(DATA),)

.PHONY: build reproduce reproduce-quick reproduce-slurm report report-archived plan plan-quick devices test test-gpu synth

build:
	$(CARGO) build --release $(FEATURES)

# Runs whatever the suite is missing (resumable), then writes its report.
reproduce: build
	$(CMKM) plan $(SUITE) $(DATA_ARG)
	$(CMKM) reproduce $(SUITE) $(DATA_ARG)
	$(CMKM) report $(SUITE) $(DATA_ARG)

# The suite on a Slurm cluster, as dependent job arrays over a shared
# results folder (README, "On a cluster"); SLURM_ARGS passes options, e.g.
#   make reproduce-slurm SUITE=experiments/paper-utd.yaml SLURM_ARGS="--partition cpu --cpus-per-task 2"
SLURM_ARGS ?=
reproduce-slurm: build
	$(CMKM) slurm submit $(SUITE) $(DATA_ARG) $(SLURM_ARGS)

# The quick suite: paper model sizes, 3 epochs, one seed (minutes).
reproduce-quick: build
	$(CMKM) reproduce $(QUICK) --quiet
	$(CMKM) report $(QUICK)

report: build
	$(CMKM) report $(SUITE) $(DATA_ARG)

# The report from the suite's committed runs (reports/<suite>/runs.tar.gz,
# written by `cmkm store pack`), without training anything: seconds.
report-archived: build
	$(CMKM) store unpack $(SUITE) $(DATA_ARG)
	$(CMKM) report $(SUITE) $(DATA_ARG)

plan: build
	$(CMKM) plan $(SUITE) $(DATA_ARG)

plan-quick: build
	$(CMKM) plan $(QUICK)

# The CPU and the GPU adapters that DEVICE= can name (built with the GPU
# backend, whatever DEVICE says).
devices:
	$(CARGO) run --release --quiet --features gpu -- devices

# Every crate of the workspace, then the kernels (and the layers built on
# them) again at each lower instruction set: capped at AVX2 + FMA, as a CPU
# without AVX-512 runs them, and on the portable path, as one without AVX2.
# Tests that need what this machine lacks (root for the Slurm cluster, a
# Vulkan adapter, Chromium) skip themselves and say so; the list is printed
# at the end. CMKM_REQUIRE_SLURM / _GPU / _BROWSER=1 (CI) make them fail.
SKIP_LOG = $(CURDIR)/target/skipped-tests.txt
test:
	@mkdir -p target && rm -f $(SKIP_LOG)
	CMKM_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --release --workspace
	@echo "kernel and layer tests again with the ISA capped at AVX2 + FMA (CMKM_KERNELS_MAX_ISA=avx2; the same as above on a CPU without AVX-512)"
	CMKM_KERNELS_MAX_ISA=avx2 $(CARGO) test --release -p cmkm-kernels -p cmkm --lib
	@echo "kernel and layer tests again on the portable path (CMKM_KERNELS_PORTABLE=1)"
	CMKM_KERNELS_PORTABLE=1 $(CARGO) test --release -p cmkm-kernels -p cmkm --lib
	@if [ -s $(SKIP_LOG) ]; then echo "skipped tests:"; sort -u $(SKIP_LOG); else echo "no test skipped"; fi

# The GPU tests (tests/gpu.rs) in a build with the GPU backend, on the
# first Vulkan, Metal or DirectX 12 adapter (Mesa's software Vulkan in CI).
test-gpu:
	@mkdir -p target && rm -f $(SKIP_LOG)
	CMKM_SKIP_LOG=$(SKIP_LOG) $(CARGO) test --release --features gpu --test gpu
	@if [ -s $(SKIP_LOG) ]; then echo "skipped tests:"; sort -u $(SKIP_LOG); else echo "no test skipped"; fi

synth: build
	$(CMKM) synth --out results/data/synthetic-utd-seed0 --seed 0
