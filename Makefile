# cmkm: the two commands README promises, plus helpers.
#   make reproduce   the main job on the embedded synthetic data (DATA= overrides)
#   make test        the test suite (release mode: training tests need it)

CARGO ?= cargo
DATA ?= experiments/datasets/synthetic-utd.yaml
CMKM = $(CARGO) run --release --quiet --

.PHONY: build reproduce reproduce-quick plan-quick test synth

build:
	$(CARGO) build --release

# Until the method and harness issues land, the main job generates the
# synthetic set (if missing), inspects it and runs the 1-NN baseline.
reproduce: build
	$(CMKM) data inspect $(DATA)
	$(CMKM) data baseline $(DATA)

# The quick suite: paper model sizes, 3 epochs, one seed (minutes).
reproduce-quick: build
	$(CMKM) reproduce experiments/quick-utd.yaml --quiet

plan-quick: build
	$(CMKM) plan experiments/quick-utd.yaml

test:
	$(CARGO) test --release

synth: build
	$(CMKM) synth --out results/data/synthetic-utd-seed0 --seed 0
