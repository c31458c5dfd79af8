# lifeboat — the two commands of the README, and a few helpers.
#   make run   install what is missing, build, start lifeboatd on etc/lifeboat-local.conf
#   make test  install what is missing, build under ASan+UBSan, run every test
#              (the fuzz targets of tests/fuzz for FUZZ_TIME=20 seconds each among them)
#   make fuzz  build the fuzz targets and run each for FUZZ_TIME seconds (600 unless told)
.PHONY: all build run test unit integration integration-pg fuzz bench deps test-deps install clean

BUILD      ?= build
TESTBUILD  ?= build-test
JOBS       ?= $(shell nproc)
PYTHON     ?= /usr/bin/python3
LOCALCONF  ?= etc/lifeboat-local.conf
FUZZBUILD  ?= build-fuzz

all: build

deps:
	@scripts/install-deps.sh

test-deps:
	@scripts/install-deps.sh --test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLB_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	@scripts/install-deps.sh --demo
	@scripts/run-local.sh $(BUILD) $(LOCALCONF)

$(TESTBUILD)/lifeboatd: test-deps FORCE
	@cmake -S . -B $(TESTBUILD) -DCMAKE_BUILD_TYPE=Debug -DLB_SANITIZE=ON >/dev/null
	@cmake --build $(TESTBUILD) -j $(JOBS)
FORCE:

unit: $(TESTBUILD)/lifeboatd
	cd $(TESTBUILD) && ctest --output-on-failure -j $(JOBS)

integration: $(TESTBUILD)/lifeboatd
	LIFEBOAT_BUILD=$(abspath $(TESTBUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# The same suite with every daemon on PostgreSQL (a throw-away server; make test runs both).
integration-pg: $(TESTBUILD)/lifeboatd
	LB_TEST_STORE=pg LIFEBOAT_BUILD=$(abspath $(TESTBUILD)) $(PYTHON) -m pytest -q -rs -p no:cacheprovider tests/integration

# The release build is compiled too: -O2 finds warnings (-Werror) that the
# Debug build under the sanitizers does not, and `make run` uses it.
test: $(TESTBUILD)/lifeboatd build
	@FUZZBUILD=$(FUZZBUILD) scripts/run-tests.sh $(TESTBUILD)

# The fuzz targets, long: FUZZ_TIME seconds each (FUZZ_TARGETS for a subset).
fuzz: test-deps
	@FUZZ_TIME=$${FUZZ_TIME:-600} scripts/run-fuzz.sh $(FUZZBUILD)

# Speed and memory next to Postfix (root): the mail path, then several nodes on PostgreSQL.
bench: build
	bench/run --no-build --build-dir $(BUILD)
	bench/cluster --no-build --build-dir $(BUILD)

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(FUZZBUILD)
