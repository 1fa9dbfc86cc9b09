# hbfence — build, test, benchmark and demonstrate.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
LDFLAGS := -X main.version=$(VERSION)
# The tests: unit, scenario (fake time), fuzz seeds and the integration
# tests with real daemon processes, files and loop devices (as root).
TESTFLAGS ?= -race -count=1 -timeout 10m
FUZZTIME  ?= 5m

.PHONY: all build test bench demo fuzz vet clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The full verbose log goes to test.out; the summary, and every skipped
# test with its reason (a missing facility), is printed.
test:
	$(GO) vet ./...
	@$(GO) test $(TESTFLAGS) -v ./... > test.out 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then cat test.out; fi; \
	grep -E '^(ok|FAIL|\?)' test.out; \
	echo "skipped tests, with their reasons:"; \
	awk '/^=== RUN/ {n=0; delete buf} {buf[++n]=$$0} /--- SKIP/ {for (i=2; i<=n; i++) print buf[i]}' test.out | grep . || echo "  (none)"; \
	exit $$rc

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench.out

# The demonstration pool: three hosts as real processes on one heartbeat
# file in a temporary directory, with the fast timing profile.
demo: build
	./$(BIN)/hbfence-lab

# Every decoder for FUZZTIME each.
FUZZPKGS  ?= ./heartbeat/ondisk/ ./restart/store/ ./internal/control/ ./internal/config/
fuzz:
	for p in $(FUZZPKGS); do \
		for f in $$($(GO) test -list '^Fuzz' $$p | grep ^Fuzz); do \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

vet:
	$(GO) vet ./...

clean:
	rm -rf $(BIN) bench.out test.out
