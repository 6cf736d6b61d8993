# The README's two commands: `make demo` and `make test`. Both first install
# missing Debian packages through scripts/install-deps.sh (idempotent).
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps configure demo test bench clean

all: deps configure
	cmake --build $(BUILD) -j $(JOBS)

deps:
	@sh scripts/install-deps.sh

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

demo: all
	sh examples/single_region/run.sh $(BUILD)
	sh examples/visual_pathway/run.sh $(BUILD)

test: all
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench: configure
	@sh scripts/install-deps.sh --bench
	cmake --build $(BUILD) -j $(JOBS)
	sh bench/run.sh $(BUILD)
	sh bench/run_spec.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-asan
