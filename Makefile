# cmkm: the two commands README promises, plus helpers.
#   make reproduce        the paper's UTD-MHAD suite on the embedded synthetic
#                         data, then its report (hours on a 2-core CPU)
#   make test             the test suite (release mode: training tests need it)
# SUITE= picks another suite, DATA= another dataset declaration, e.g.
#   make reproduce SUITE=experiments/paper-mmact-xsubject.yaml
#   make reproduce DATA=experiments/datasets/utd-mhad.yaml

CARGO ?= cargo
SUITE ?= experiments/paper-utd.yaml
DATA ?=
QUICK = experiments/quick-utd.yaml
CMKM = $(CARGO) run --release --quiet --
DATA_ARG = $(if $(DATA),--dataset $(DATA),)

.PHONY: build reproduce reproduce-quick report plan plan-quick test synth

build:
	$(CARGO) build --release

# Runs whatever the suite is missing (resumable), then writes its report.
reproduce: build
	$(CMKM) plan $(SUITE) $(DATA_ARG)
	$(CMKM) reproduce $(SUITE) $(DATA_ARG)
	$(CMKM) report $(SUITE) $(DATA_ARG)

# The quick suite: paper model sizes, 3 epochs, one seed (minutes).
reproduce-quick: build
	$(CMKM) reproduce $(QUICK) --quiet
	$(CMKM) report $(QUICK)

report: build
	$(CMKM) report $(SUITE) $(DATA_ARG)

plan: build
	$(CMKM) plan $(SUITE) $(DATA_ARG)

plan-quick: build
	$(CMKM) plan $(QUICK)

test:
	$(CARGO) test --release

synth: build
	$(CMKM) synth --out results/data/synthetic-utd-seed0 --seed 0
