# imgfront developer tasks. Every target is safe to re-run.
#
#   make setup       host packages + config (scripts/setup-host.sh, root), .venv, arm64 emulation
#   make demo        setup, the busybox base list, then build and run examples/hello for two platforms
#   make test        setup, lint, then all tests (unit and slow integration, on the host's podman and on
#                    the other Debian release's podman in a container; needs root)
#   make podman-node the cached root file system of that second podman (scripts/podman-node-rootfs.sh)
#   make test-fast   unit tests only (-m 'not slow'); needs just the venv
#   make lint        ruff check, ruff format --check, mypy, lint-imports (the layers contract in pyproject.toml)
#   make bench       every figure (build on a fresh and a full store, pipeline, reproducible, push, cache, transfer,
#                    startup; build and transfer on podman 5 too); appends to bench/RESULTS.md
#   make debian-base the Debian bookworm base list for amd64 and arm64 (examples/hello-static)
#   make image       the imgfront container image for amd64 and arm64 (docs/container-image.md)
#
# As a non-root user on an unprepared host, setup (and so demo and test) prints what to install
# and stops.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
IMGFRONT := $(BIN)/imgfront
PLATFORMS := linux/amd64,linux/arm64
BASE_IMAGE := localhost/imgfront/busybox:latest
DEMO_IMAGE := localhost/hello:1
PYTEST_ARGS ?=
# Rounds of each figure in `make bench`; every bench script takes --rounds N --record.
BENCH_ROUNDS ?= 3

# Where setup-host.sh caches the static busybox binaries; the test fixtures read the same variable.
export IMGFRONT_BUSYBOX_DIR ?= /var/cache/imgfront/busybox

# Copy busybox-amd64 and busybox-arm64 into a build context; unchanged files are left alone.
copy-busybox = for arch in amd64 arm64; do cmp -s $(IMGFRONT_BUSYBOX_DIR)/busybox-$$arch $(1)/busybox-$$arch \
    || install -m 755 $(IMGFRONT_BUSYBOX_DIR)/busybox-$$arch $(1)/busybox-$$arch; done

.PHONY: help setup host venv base-image reference-context podman-node demo test test-fast lint bench clean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

host:
	scripts/setup-host.sh

venv: $(VENV)/.installed

# Reinstalls only when pyproject.toml is newer than the stamp.
$(VENV)/.installed: pyproject.toml
	[[ -x $(BIN)/python ]] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# Sequential on purpose: the venv needs python3-venv from the host step.
setup:
	scripts/setup-host.sh
	$(MAKE) --no-print-directory venv
	$(IMGFRONT) emulation install --platform linux/arm64

base-image: setup
	@if podman manifest exists $(BASE_IMAGE); then \
	    echo "$(BASE_IMAGE) exists; to rebuild it: podman manifest rm $(BASE_IMAGE)"; \
	else \
	    $(call copy-busybox,containerfiles/busybox); \
	    set -x; \
	    $(IMGFRONT) build --platform $(PLATFORMS) -t $(BASE_IMAGE) containerfiles/busybox; \
	fi

# localhost/imgfront/debian:bookworm for amd64 and arm64 (examples/hello-static builds on it): mmdebstrap,
# with the root file systems cached in /var/cache/imgfront/debian, then podman import and a local list.
.PHONY: debian-base
debian-base: setup
	scripts/debian-base.sh

# imgfront's own image, built by imgfront on the local Debian list. Certificates this host adds (a proxy that
# re-signs PyPI's TLS) are trusted by pip in the build's first stage only.
.PHONY: image
image: setup debian-base
	$(IMGFRONT) build --platform $(PLATFORMS) -f containerfiles/imgfront.Containerfile \
	    --build-arg BASE=localhost/imgfront/debian:bookworm \
	    --build-arg EXTRA_CA_CERTS="$$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)" \
	    -t localhost/imgfront:latest .

# The reference workload's context (tests and benchmarks build containerfiles/reference).
reference-context: setup
	@$(call copy-busybox,containerfiles/reference)

demo: setup base-image
	$(IMGFRONT) build --platform $(PLATFORMS) -t $(DEMO_IMAGE) examples/hello
	@echo "--- podman run --platform linux/arm64 $(DEMO_IMAGE):"
	@podman run --rm --platform linux/arm64 $(DEMO_IMAGE)
	@echo "--- podman run --platform linux/amd64 $(DEMO_IMAGE):"
	@podman run --rm --platform linux/amd64 $(DEMO_IMAGE)

# The test suite's second podman (podman 5.x on Debian 12, 4.3 on Debian 13): a root file system made once
# from Debian's mirror and cached under /var/cache/imgfront/podman-node; never installed on the host.
podman-node: setup
	scripts/podman-node-rootfs.sh >/dev/null

test: setup reference-context podman-node lint
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: venv
	$(BIN)/pytest -m 'not slow' $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

BENCH_ARGS = --rounds $(BENCH_ROUNDS) --record

bench: setup podman-node
	$(BIN)/python bench/bench_build.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_build.py --store-images 1000 $(BENCH_ARGS)
	$(BIN)/python bench/bench_pipeline.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_reproducible.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_push.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_cache.py $(BENCH_ARGS)
	$(BIN)/python bench/bench_transfer.py --format oci-archive $(BENCH_ARGS)
	$(BIN)/python bench/bench_startup.py --rounds $$(( $(BENCH_ROUNDS) * 5 )) --record
	$(BIN)/python bench/bench_build.py --engine podman5 $(BENCH_ARGS)
	$(BIN)/python bench/bench_transfer.py --engine podman5 $(BENCH_ARGS)

# Local files only; images in podman's storage are left alone.
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	rm -f containerfiles/busybox/busybox-* containerfiles/reference/busybox-*
