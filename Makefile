# copse: the two commands a new user needs are `make demo` and `make test`.
# Each installs the Debian packages it needs (scripts/deps.sh) before it runs.
JOBS ?= 2
BUILD ?= build

.PHONY: all build demo test bench install clean deps-build

all: build

deps-build:
	@bash scripts/deps.sh build

build: deps-build
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

# Indexes Fashion-MNIST (60,000 x 784) and answers its 10,000 test images.
demo:
	@bash scripts/deps.sh demo
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS) --target copse_cli
	COPSE_BUILD_DIR=$(CURDIR)/$(BUILD) bash scripts/demo.sh

# Every layer: C tests (release, ASan+UBSan, TSan), CLI tests, Python tests.
test:
	@bash scripts/deps.sh test
	JOBS=$(JOBS) bash tests/run-all.sh

# Side by side with Annoy, hnswlib and faiss (long: see bench/README.md).
bench:
	@bash scripts/deps.sh bench
	bash bench/run.sh

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) build-test build-asan build-tsan build-clang
