# micronn: `make demo` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
comma := ,
VENV := .venv
PY := $(VENV)/bin/python
BOARD ?= unix
QEMU_BOARDS := qemu-m3 qemu-m4 qemu-stm32f405 qemu-m7 qemu-rv32
export MICRONN_SHARED ?= $(abspath ../shared)

.PHONY: setup test test-data demo bench firmware firmware-all lint format-header clean distclean fuzz fuzz-check fuzz-corpus fuzz-smoke fuzz-host \
	compile-check example

setup: .cache/apt.stamp $(VENV)/.stamp micropython

.cache/apt.stamp: tools/setup-apt.sh
	@mkdir -p .cache
	tools/setup-apt.sh
	@touch $@

$(VENV)/.stamp: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[tf,dev]'
	@touch $@

# MicroPython source: $(MICROPY_DIR) if given, else Debian's source package, cached.
micropython:
ifndef MICROPY_DIR
	tools/fetch-micropython.sh .cache/micropython-1.25.0
endif

firmware: setup
	$(VENV)/bin/micronn firmware build --board $(BOARD)

lint: setup
	$(VENV)/bin/ruff check host tests device tools examples
	$(PY) -m micronn.format --check

format-header: setup
	$(PY) -m micronn.format --write

# unix-asan: the unix port under ASan and UBSan, for tests/test_mutations.py and tests/test_heap.py;
# unix-stock, qemu-m3-stock, qemu-m4-stock, qemu-rv32-stock: firmware without micronn, which
# loads the native module (make natmod; tests/test_natmod.py); 20 s to 2 min each here
firmware-all: setup
	@for b in unix unix-asan unix-stock $(QEMU_BOARDS) qemu-m3-stock qemu-m4-stock qemu-rv32-stock; do \
		$(VENV)/bin/micronn firmware build --board $$b || exit 1; done

# micronn.mpy, the native module stock firmware imports (no firmware build), for every
# architecture Debian's compilers reach: build/natmod/micronn-ARCH.mpy, x64 armv6m armv7m
# armv7emsp armv7emdp rv32imc (xtensawin needs Espressif's compiler: docs/boards.md).
.PHONY: natmod
natmod: setup
	$(VENV)/bin/micronn natmod build

# make test needs the shared data and every package: missing ones stop it here, and
# MICRONN_STRICT=1 makes a test that finds something missing fail instead of skipping.
test-data:
	@python3 tools/check_test_env.py --data

test: test-data setup
	@$(PY) tools/check_test_env.py
	$(MAKE) --no-print-directory firmware-all
	$(MAKE) --no-print-directory natmod
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory compile-check
	$(MAKE) --no-print-directory fuzz-check
	$(MAKE) --no-print-directory fuzz-smoke
	MICRONN_STRICT=1 $(PY) -m pytest

# The C module compiles warning-free (-Wall -Wextra -Werror) with each real board
# family's cross compiler and flags (STM32F4/L4, STM32H7, ESP32-C3, Xtensa).
compile-check: setup
	tools/compile-check.sh

DEMO_BOARD ?= qemu-m4

# Instruction counts under qemu -icount: prints the tables, writes docs/benchmarks.md.
BENCH_BOARDS ?= qemu-m3,qemu-m4,qemu-m7
bench: setup
	@for b in $(subst $(comma), ,$(BENCH_BOARDS)); do $(VENV)/bin/micronn firmware build --board $$b || exit 1; done
	$(PY) tools/bench.py --boards $(BENCH_BOARDS)

demo: setup
	$(VENV)/bin/micronn firmware build --board $(DEMO_BOARD)
	MICRONN_TARGET=$(DEMO_BOARD) $(PY) tools/demo.py

# make example NAME=digits [QUICK=1]: one of examples/ end to end (examples/README.md);
# QUICK=1 passes --quick (few epochs, few samples: what make test runs). Artefacts: build/examples/NAME/.
EXAMPLES := $(sort $(patsubst examples/%/run.py,%,$(wildcard examples/*/run.py)))
EXAMPLE_BOARD ?= qemu-m4
example:
	@if [ -z "$(NAME)" ]; then echo "make example: give NAME=EXAMPLE, one of: $(EXAMPLES)" >&2; exit 1; fi
	@if [ -z "$(filter $(NAME),$(EXAMPLES))" ]; then \
		echo "make example: no example '$(NAME)' (examples: $(EXAMPLES))" >&2; exit 1; fi
	@$(MAKE) --no-print-directory setup
	$(VENV)/bin/micronn firmware build --board $(EXAMPLE_BOARD)
	$(PY) examples/$(NAME)/run.py$(if $(filter-out 0,$(QUICK)), --quick)

clean:
	rm -rf build out

distclean: clean
	rm -rf .cache $(VENV)

# Fuzzing the loader and runtime (clang's libFuzzer, ASan, UBSan).
FUZZ_SECONDS ?= 600
FUZZ_BIN := build/fuzz/fuzz_blob
FUZZ_SRC := tests/fuzz/fuzz_blob.c cmodule/loader.c cmodule/runtime.c $(wildcard cmodule/kernels/*.c)

$(FUZZ_BIN): $(FUZZ_SRC) cmodule/*.h cmodule/kernels/*.h
	@mkdir -p $(dir $@)
	clang -g -O1 -DMNN_FUZZING -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		-Icmodule -Icmodule/kernels -o $@ $(FUZZ_SRC) -lm

fuzz-corpus: setup
	$(PY) tests/fuzz/make_corpus.py build/fuzz/corpus

# The same harness built for source-based coverage, run once per file by tests/fuzz/replay.c.
LLVM_COV ?= llvm-cov
LLVM_PROFDATA ?= llvm-profdata
FUZZ_COV := build/fuzz/coverage
FUZZ_COV_SRC := tests/fuzz/replay.c $(FUZZ_SRC)

$(FUZZ_COV)/replay: $(FUZZ_COV_SRC) cmodule/*.h cmodule/kernels/*.h
	@mkdir -p $(dir $@)
	clang -O1 -DMNN_FUZZING -fprofile-instr-generate -fcoverage-mapping -Icmodule -Icmodule/kernels \
		-o $@ $(FUZZ_COV_SRC) -lm

# Replays the committed corpus (including every crash found so far) under the sanitizers,
# then prints the line coverage of cmodule/ it reaches and fails unless it runs every
# kernel function and every kernel line but those in tests/fuzz/coverage-allow.txt.
fuzz-check: $(FUZZ_BIN) $(FUZZ_COV)/replay
	$(FUZZ_BIN) -runs=0 tests/fuzz/corpus
	@command -v $(LLVM_COV) >/dev/null && command -v $(LLVM_PROFDATA) >/dev/null \
		|| { echo "fuzz-check: $(LLVM_COV) and $(LLVM_PROFDATA) are missing (Debian package llvm: make setup)"; exit 1; }
	rm -f $(FUZZ_COV)/corpus.profraw
	LLVM_PROFILE_FILE=$(FUZZ_COV)/corpus.profraw $(FUZZ_COV)/replay tests/fuzz/corpus
	$(LLVM_PROFDATA) merge -o $(FUZZ_COV)/corpus.profdata $(FUZZ_COV)/corpus.profraw
	python3 tests/fuzz/coverage_check.py --llvm-cov $(LLVM_COV) --binary $(FUZZ_COV)/replay \
		--profdata $(FUZZ_COV)/corpus.profdata --allow tests/fuzz/coverage-allow.txt

# A short campaign for `make test` (FUZZ_SMOKE_SECONDS): fresh seeds and the committed
# corpus, new inputs and any crash, leak or UB report (which fails the build) in a scratch dir.
FUZZ_SMOKE_SECONDS ?= 60
FUZZ_SMOKE := build/fuzz/smoke

fuzz-smoke: $(FUZZ_BIN) setup
	rm -rf $(FUZZ_SMOKE) && mkdir -p $(FUZZ_SMOKE)/new
	$(PY) tests/fuzz/make_corpus.py $(FUZZ_SMOKE)/seeds
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SMOKE_SECONDS) -max_len=400000 -timeout=30 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_SMOKE)/ $(FUZZ_SMOKE)/new $(FUZZ_SMOKE)/seeds tests/fuzz/corpus \
		|| { echo "fuzz-smoke: the fuzzer found a problem; reproducer: $$(ls $(FUZZ_SMOKE)/*-* 2>/dev/null)"; exit 1; }

fuzz: $(FUZZ_BIN) fuzz-corpus
	$(FUZZ_BIN) -max_total_time=$(FUZZ_SECONDS) -max_len=400000 -print_final_stats=1 \
		build/fuzz/corpus tests/fuzz/corpus
	$(MAKE) --no-print-directory fuzz-host

# The host side: mutated .tflite files through micronn.pack and mutated blobs through
# inspect must give a result or a MicronnError, never another exception (tests/test_host_fuzz.py;
# make test runs 4,000 mutations, HOST_FUZZ_SEED picks another deterministic set).
HOST_FUZZ_N ?= 100000
fuzz-host: setup
	HOST_FUZZ_N=$(HOST_FUZZ_N) $(PY) -m pytest tests/test_host_fuzz.py -q -p no:cacheprovider
