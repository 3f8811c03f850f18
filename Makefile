# ovs-vxctl: see README.md. `make demo` and `make test` are the two entry points.
GO        ?= go
BIN       := bin/ovs-vxctl
EXAMPLE   ?= examples/three-hosts/topology.yaml
# The version `ovs-vxctl --version` prints, stamped into the binary.
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build deps test unit integration demo lint fuzz generate clean

all: build

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/ovs-vxctl

deps:
	./scripts/install-deps.sh

# Three tiers: lint (gofmt, vet); unit (-short: no root, no OVS, race
# detector); then every test again without -short, so the real-OVS tests and
# the integration labs run too. Packages run one at a time (-p 1): several of
# them run OVS labs, and on two cores concurrent labs make timing-sensitive
# checks flaky.
test: deps lint unit
	$(GO) test -count=1 -p 1 -timeout 40m ./...

# The unit tier: no root, no Open vSwitch; tests that need them skip under
# -short. Well under a minute.
unit:
	$(GO) test -count=1 -short -race ./...

integration: deps
	$(GO) test -count=1 -timeout 40m -v ./integration/...

demo: deps build
	./scripts/demo.sh $(BIN) $(EXAMPLE)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Short fuzzing of every parser of outside input: every FuzzXxx in the tree.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

# Benchmarks (root, Open vSwitch; about 12 minutes on 2 cores): prints a table
# and BENCH lines, writes bench/results.json and bench/results.svg.
# BENCH_ARGS passes options, e.g. BENCH_ARGS="-only install,compile -runs 7".
.PHONY: bench
BENCH_ARGS ?=
bench: deps build
	$(GO) run ./bench -bin $(BIN) -out bench/results.json $(BENCH_ARGS)

generate:
	$(GO) generate ./...

clean:
	rm -rf bin

# Install for production (see README, "Running in production"): the binary,
# man pages and bash/zsh completion generated from the command tree, and the
# systemd units with their paths filled in. DESTDIR stages the tree (for a
# package); the units name $(PREFIX)/bin/ovs-vxctl and $(SYSCONFDIR) without
# it. $(SYSCONFDIR)/default/ovs-vxctl is installed only when absent.
PREFIX      ?= /usr/local
DESTDIR     ?=
SYSCONFDIR  ?= /etc
BINDIR      := $(PREFIX)/bin
MANDIR      := $(PREFIX)/share/man/man8
BASHCOMPDIR := $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  := $(PREFIX)/share/zsh/vendor-completions
UNITDIR     := $(PREFIX)/lib/systemd/system
UNITS       := ovs-vxctl-agent.service ovs-vxctl-controller.service

.PHONY: install uninstall
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/ovs-vxctl $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ovs-vxctl
	$(BIN) gen-man $(DESTDIR)$(MANDIR)
	$(BIN) completion bash > $(DESTDIR)$(BASHCOMPDIR)/ovs-vxctl
	$(BIN) completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_ovs-vxctl
	for u in $(UNITS); do \
		sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' packaging/systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/default/ovs-vxctl || \
		install -m 0644 packaging/default/ovs-vxctl $(DESTDIR)$(SYSCONFDIR)/default/ovs-vxctl

# Removes what install put there, except the configuration under SYSCONFDIR.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ovs-vxctl $(DESTDIR)$(MANDIR)/ovs-vxctl.8 $(DESTDIR)$(MANDIR)/ovs-vxctl-*.8 \
		$(DESTDIR)$(BASHCOMPDIR)/ovs-vxctl $(DESTDIR)$(ZSHCOMPDIR)/_ovs-vxctl
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
