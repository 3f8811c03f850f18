# ovs-vxctl: see README.md. `make demo` and `make test` are the two entry points.
GO        ?= go
BIN       := bin/ovs-vxctl
EXAMPLE   ?= examples/three-hosts/topology.yaml
export PATH := $(PATH):/usr/local/go/bin

.PHONY: all build deps test unit integration demo lint fuzz generate clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/ovs-vxctl

deps:
	./scripts/install-deps.sh

# Every unit test and every integration test (real OVS, root). Packages run
# one at a time (-p 1): several of them run OVS labs, and on two cores
# concurrent labs make timing-sensitive checks flaky.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -p 1 -timeout 40m ./...

# Fast tests only: no OVS needed.
unit:
	$(GO) test -count=1 -short ./topology/... ./flows/...

integration: deps
	$(GO) test -count=1 -timeout 40m -v ./integration/...

demo: deps build
	./scripts/demo.sh $(BIN) $(EXAMPLE)

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...

# Short fuzzing of every parser of outside input.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run XXX -fuzz FuzzParse -fuzztime $(FUZZTIME) ./topology

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
