# pcache build. `make setup` is what a fresh machine needs; `make test` runs everything.
SHELL := /bin/bash
NODE_GYP := npx --no-install node-gyp
export npm_config_nodedir ?= /usr

NATIVE_SRC := $(wildcard native/src/*.cc native/src/*.h) native/binding.gyp
NATIVE_OUT := native/build/Release/pcache_tracer.node
NATIVE_FILEOPS := native/build/Release/pcache_fileops.node
FIXTURE_SRC := $(wildcard fixtures/c/*.c)
FIXTURE_BIN := $(patsubst fixtures/c/%.c,fixtures/bin/%,$(FIXTURE_SRC))
TS_SRC := $(shell find src cache-store -name '*.ts' 2>/dev/null)

.PHONY: all setup build native ts snapshot fixtures test bench bench-cache bench-trace demo clean

all: build

setup:
	bash scripts/setup.sh

build: native ts fixtures snapshot

native: $(NATIVE_OUT) $(NATIVE_FILEOPS)
# flock: test runs and builds started at the same time must not build into one directory at once.
# One rebuild makes both addons (binding.gyp); each is checked against every source.
$(NATIVE_OUT) $(NATIVE_FILEOPS): $(NATIVE_SRC)
	cd native && flock .build.lock sh -c 'for o in build/Release/pcache_tracer.node build/Release/pcache_fileops.node; do [ $$o -nt binding.gyp ] && [ -z "$$(find src -newer $$o)" ] || exec $(NODE_GYP) rebuild --release >/dev/null; done'

ts: dist/.tsc-stamp
# Only when a source changed: tsc takes 4 s and rewrites every file of dist/ each time,
# which also makes the startup snapshot stale (bin/pcache starts without it until rebuilt).
dist/.tsc-stamp: $(TS_SRC) tsconfig.json
	npx --no-install tsc -p tsconfig.json
	@touch $@

# pcache's startup snapshot, for bin/pcache to start from (scripts/startup-snapshot/).
# The script decides itself whether it is up to date (~30 ms): one of its inputs is the
# node binary, whose mtime make cannot compare (a package manager sets it in the past).
snapshot: native ts
	node scripts/startup-snapshot/build.js

fixtures: $(FIXTURE_BIN)
fixtures/bin/%: fixtures/c/%.c
	@mkdir -p fixtures/bin
	gcc -O1 -g -Wall -pthread -o $@ $<

test:
	bash scripts/test.sh $(JEST_ARGS)

demo:
	bash scripts/demo.sh

bench-trace: setup
	bash bench/trace-bench.sh

bench: setup
	bash bench/pipelines-bench.sh

bench-cache: setup
	bash bench/cache-bench.sh

clean:
	rm -rf dist native/build fixtures/bin
