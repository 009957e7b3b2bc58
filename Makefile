# Front door for affinity. `make run` and `make test` are the two commands a user needs.
BUILD_DIR ?= build
ASAN_DIR  ?= build-asan
FUZZ_DIR  ?= build-fuzz
JOBS      ?= $(shell nproc)
DATA      ?= data/demo
PORT      ?= 8080
HOST      ?= 127.0.0.1

.PHONY: deps build bin run test test-asan fuzz fuzz-short bench bench-load demo clean format

deps:
	@bash scripts/deps.sh

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

# The affinity binary alone (what `make run` needs; no tests or benchmarks).
bin: deps $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS) --target affinity

demo: bin
	@bash scripts/demo_world.sh $(BUILD_DIR)/affinity $(DATA)

run: demo
	@bash scripts/serve_demo.sh $(BUILD_DIR)/affinity $(DATA) $(HOST) $(PORT)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600
	@bash scripts/fuzz.sh $(FUZZ_DIR) short

# The parsers' fuzz harnesses (fuzz/, clang's libFuzzer with ASan and UBSan, in
# $(FUZZ_DIR)): `fuzz` runs each to ten million executions, `fuzz-short` a few
# seconds each (part of `make test`).
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZ_DIR) long

fuzz-short: deps
	@bash scripts/fuzz.sh $(FUZZ_DIR) short

$(ASAN_DIR)/CMakeCache.txt:
	cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAFFINITY_SANITIZE=ON -DAFFINITY_BUILD_BENCHMARKS=OFF

test-asan: deps $(ASAN_DIR)/CMakeCache.txt
	cmake --build $(ASAN_DIR) -j $(JOBS)
	cd $(ASAN_DIR) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900 -LE slow

bench: build
	@bash scripts/bench.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(FUZZ_DIR)

format:
	clang-format -i $$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc')
