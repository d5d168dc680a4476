# lbtriage — the two commands: `make demo` and `make test`. Both install what they need:
# Debian packages with apt-get, Python tools into a project-local virtualenv (.venv).

SHELL := /bin/bash
VENV := .venv
PYTHON := $(VENV)/bin/python
CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := prometheus prometheus-alertmanager nginx chromium chromium-driver buildah

.PHONY: all build release test lint generate demo demo-smoke deps venv bench bench-page load soak fuzz clean dist image

all: build

## Debian packages: promtool (from prometheus) for the exposition and rule checks, Alertmanager and
## amtool for the routing and inhibition tests, nginx as a real
## load balancer in front of the misbehaving test backends, Chromium and chromedriver for the
## browser test of the `/` page, buildah to build and run the container image without a daemon. Their system services are not wanted.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  for p in $$missing; do $(SUDO) systemctl disable --now $$p >/dev/null 2>&1 || $(SUDO) service $$p stop >/dev/null 2>&1 || true; done; \
	fi

## Python tools (moto, the CBOR bridge's cbor2), pinned, in a project-local virtualenv.
venv: $(VENV)/.installed
$(VENV)/.installed: tests/emulator/requirements.txt
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --disable-pip-version-check -r tests/emulator/requirements.txt
	touch $@

build:
	$(CARGO) build

release:
	$(CARGO) build --release

## The release archive and its checksums in dist/ (binary, README, LICENSE, example config, rule file,
## dashboards, runbooks, systemd unit, cloud policies); the suite checks the same script.
dist: release
	deploy/dist.sh target/release/lbtriage dist

## The container image (deploy/docker/Dockerfile): docker where present, buildah otherwise.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' exporter/Cargo.toml | head -n 1)
image:
	@if command -v docker >/dev/null 2>&1; then \
	  docker build -f deploy/docker/Dockerfile -t lbtriage:$(VERSION) . ; \
	else \
	  $(SUDO) buildah bud --format docker -f deploy/docker/Dockerfile -t lbtriage:$(VERSION) . ; \
	fi

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Every test: formatting and lints, unit tests, the integration binary (emulator, real binary,
## promtool), and a short run of the demo. Three test threads on two cores: the integration tests
## mostly wait on real servers and clouds' periods (96 s of CPU in 160 s of wall time), and the
## longest one (faults, 136 s) then runs beside the rest instead of bounding half the suite.
test: deps venv lint
	$(CARGO) test --lib --test integration -- --test-threads=3
	$(MAKE) --no-print-directory demo-smoke

## The demo: emulated AWS (moto + bridge) with a fleet and an incident, lbtriage against it.
demo: deps venv build
	$(PYTHON) demo/demo.py --lbtriage target/debug/lbtriage

## The demo, unattended for a few cycles; fails unless the incident shows in lbtriage's metrics.
demo-smoke: deps venv build
	$(PYTHON) demo/demo.py --lbtriage target/debug/lbtriage --seconds 120 --check

## Rewrites the committed files rendered from code (docs/metrics.md, ...); `make test` checks them.
generate:
	LBTRIAGE_UPDATE_GENERATED=1 $(CARGO) test --test integration generated::

## Benchmarks (not part of `make test`): see docs/BENCHMARKS.md. The probe comparison needs
## blackbox_exporter from Debian as the peer.
bench: deps venv
	@dpkg -s prometheus-blackbox-exporter >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends prometheus-blackbox-exporter >/dev/null; \
	  $(SUDO) systemctl disable --now prometheus-blackbox-exporter >/dev/null 2>&1 || true; }
	$(CARGO) bench --bench render
	$(CARGO) test --test integration bench_ -- --ignored --nocapture --test-threads=1
	$(CARGO) build --release
	python3 bench/probes_vs_blackbox.py --lbtriage target/release/lbtriage --seconds 30

## From an outage to the page in real time (about 12 minutes per row), as docs/BENCHMARKS.md records.
bench-page: deps venv build
	$(PYTHON) bench/outage_to_page.py --lbtriage target/debug/lbtriage --delay 120s --settle 0s --page-for 2m --warmup 1200
	$(PYTHON) bench/outage_to_page.py --lbtriage target/debug/lbtriage --delay 60s --settle 10m --warmup 1200

## Load (wrk on /metrics, 64 connections, 60 s, ~50k series, collection running) and a 30-minute soak
## (collection and probes every 5 s, RSS slope). Results in docs/BENCHMARKS.md.
load: deps venv
	@command -v wrk >/dev/null || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk >/dev/null; }
	$(CARGO) build --release
	$(PYTHON) bench/load_and_soak.py --lbtriage target/release/lbtriage load

soak: deps venv
	$(CARGO) build --release
	$(PYTHON) bench/load_and_soak.py --lbtriage target/release/lbtriage soak --minutes 30

## libFuzzer targets (fuzz/): FUZZ_SECONDS each, new inputs kept in fuzz/corpus/. cargo-fuzz needs
## nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain build them. `make test` replays the
## corpus on stable (tests/fuzz_corpus.rs).
FUZZ_SECONDS ?= 600
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && for target in config answers_aws answers_alibaba answers_tencent framing; do \
	  RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -O $$target -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; \
	done

clean:
	$(CARGO) clean
	rm -rf $(VENV)
