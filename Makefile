# hbfence — build, test, benchmark and demonstrate.
GO      ?= go
BIN     ?= bin
# A development build is the spec's version with the commit as build
# metadata (0.1.0+4959d3d-dirty): pool validate reads the version's
# numbers, and a bare commit hash read as older than every release.
VERSION ?= $(shell sed -n 's/^Version:[[:space:]]*//p' packaging/hbfence.spec)+$(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION) $(EXTRA_LDFLAGS)
# The tests: unit, scenario (fake time), fuzz seeds and the integration
# tests with real daemon processes, files and loop devices (as root).
TESTFLAGS ?= -race -count=1 -timeout 10m
FUZZTIME  ?= 5m

.PHONY: all build test bench demo fuzz vet clean install dist rpm

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

# The shipped binary alone (the RPM's %build). Built when missing; "make
# build" rebuilds it.
$(BIN)/hbfence:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/hbfence ./cmd/hbfence

# Installation, as the RPM's %install does it: make install DESTDIR=...
# The unit names the binary and the files by these paths.
DESTDIR     ?=
PREFIX      ?= /usr
SBINDIR     ?= $(PREFIX)/sbin
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
CATALOGDIR  ?= $(PREFIX)/lib/systemd/catalog
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
STATEDIR    ?= /var/lib/hbfence
INSTALL     ?= install

install: $(BIN)/hbfence
	$(INSTALL) -D -m 0755 $(BIN)/hbfence $(DESTDIR)$(SBINDIR)/hbfence
	$(INSTALL) -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/sbin/hbfence|$(SBINDIR)/hbfence|g' -e 's|/etc/|$(SYSCONFDIR)/|g' \
		packaging/hbfence.service > $(DESTDIR)$(UNITDIR)/hbfence.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/hbfence.service
	# The configuration, unless one is there already (as %config(noreplace)).
	for f in hbfence/hbfence.toml:packaging/hbfence.toml sysconfig/hbfence:packaging/hbfence.sysconfig; do \
		dst=$(DESTDIR)$(SYSCONFDIR)/$${f%%:*}; \
		if [ -e "$$dst" ]; then echo "kept $$dst (the new default is $${f#*:})"; \
		else $(INSTALL) -D -m 0644 $${f#*:} "$$dst" || exit 1; fi; \
	done
	$(INSTALL) -D -m 0644 packaging/man/hbfence.8 $(DESTDIR)$(MANDIR)/man8/hbfence.8
	$(INSTALL) -D -m 0644 packaging/man/hbfence.toml.5 $(DESTDIR)$(MANDIR)/man5/hbfence.toml.5
	$(INSTALL) -D -m 0644 packaging/completion/hbfence $(DESTDIR)$(BASHCOMPDIR)/hbfence
	$(INSTALL) -d -m 0700 $(DESTDIR)$(STATEDIR)
	# The journal catalog of the daemon's messages, when this tree has one.
	if [ -f packaging/hbfence.catalog ]; then \
		$(INSTALL) -D -m 0644 packaging/hbfence.catalog $(DESTDIR)$(CATALOGDIR)/hbfence.catalog; \
	fi

# The RPM (packaging/hbfence.spec), built offline: "make dist" puts the
# source tree (the files git tracks or would track, or, outside git,
# every file) and its vendored modules (go mod vendor, from the module
# cache that go mod download filled) in a tarball; rpmbuild builds from
# it with -mod=vendor and GOPROXY=off. The version is the spec's Version:.
# --nodeps: the Go toolchain is usually not an RPM (BuildRequires is
# documentation then); RPMBUILDFLAGS= checks it.
RPMDIR        ?= $(CURDIR)/rpmbuild
RPMBUILD      ?= rpmbuild
RPMBUILDFLAGS ?= --nodeps
RPM_VERSION   := $(shell sed -n 's/^Version:[[:space:]]*//p' packaging/hbfence.spec)
DISTNAME      := hbfence-$(RPM_VERSION)

dist:
	@test -n "$(RPM_VERSION)" || { echo "packaging/hbfence.spec has no Version:" >&2; exit 1; }
	rm -rf $(RPMDIR)/stage && mkdir -p $(RPMDIR)/stage/$(DISTNAME) $(RPMDIR)/SOURCES
	if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
		git ls-files -z --cached --others --exclude-standard; \
	else \
		find . \( -name .git -o -path ./bin -o -path ./rpmbuild -o -path ./vendor \) -prune -o -type f -print0; \
	fi | tar --null --ignore-failed-read -cf - -T - | tar -xf - -C $(RPMDIR)/stage/$(DISTNAME)
	cd $(RPMDIR)/stage/$(DISTNAME) && $(GO) mod vendor
	tar -C $(RPMDIR)/stage -czf $(RPMDIR)/SOURCES/$(DISTNAME).tar.gz $(DISTNAME)
	rm -rf $(RPMDIR)/stage

GOPATHNAME    := $(shell command -v $(GO))

rpm: dist
	@test -n "$(GOPATHNAME)" || { echo "make rpm: $(GO) is not on PATH (set GO=/path/to/go)" >&2; exit 1; }
	$(RPMBUILD) $(RPMBUILDFLAGS) --define "_topdir $(RPMDIR)" --define "gobin $(GOPATHNAME)" \
		-ba packaging/hbfence.spec
	@ls $(RPMDIR)/RPMS/*/*.rpm $(RPMDIR)/SRPMS/*.rpm

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
# file in a temporary directory, with the fast timing profile; last, two pools
# of three hosts each running each other's manager (alone: bin/hbfence-lab -two-pools).
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
	rm -rf $(BIN) bench.out test.out rpmbuild
