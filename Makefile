# The two commands a newcomer needs: `make demo` and `make test`.

GO            ?= go
TEMPORAL_CLI  := bin/temporal
# Pinned: v1.9.x cannot be built with `go install` (its go.mod has a replace).
TEMPORAL_CLI_VERSION := v1.5.1
DEMO_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/matchmaking_demo?sslmode=disable
# Temporal's static determinism check for workflow code, and staticcheck;
# both pinned.
WORKFLOWCHECK := go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0
STATICCHECK   := honnef.co/go/tools/cmd/staticcheck@v0.7.0
# How many packages `make test` builds and tests at once (see test).
TEST_PACKAGES_AT_ONCE ?= $(shell expr $$(getconf _NPROCESSORS_ONLN) + 2)

.PHONY: build temporal-cli demo demo-stop test test-checks test-go test-unit workflowcheck lint bench eval browser-check clean chaos

# Go's build cache makes this cheap when nothing changed. -buildvcs=auto
# stamps the git revision that --version prints wherever git can tell it
# (and overrides a GOFLAGS=-buildvcs=false from the environment).
build:
	$(GO) build -buildvcs=auto -o bin/ ./worker ./starter

# Built once from the module proxy (about 7 minutes on 2 cores), then reused.
$(TEMPORAL_CLI):
	@mkdir -p bin
	@echo "building the Temporal CLI $(TEMPORAL_CLI_VERSION) into bin/ (first time only, several minutes)"
	GOBIN=$(CURDIR)/bin $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

temporal-cli: $(TEMPORAL_CLI)

# Dev server + worker in the background, a demo event matched and printed.
demo: build $(TEMPORAL_CLI)
	DATABASE_URL="$${DATABASE_URL:-$(DEMO_DATABASE_URL)}" ./scripts/demo.sh

demo-stop:
	./scripts/demo.sh stop

# Everything: formatting, vet, workflowcheck, staticcheck, unit and workflow
# tests, and the integration tests against the local PostgreSQL and a dev
# server the tests start. The checks (test-checks) run alongside the tests
# (test-go), not before them: the tests mostly wait (e2e on worker
# processes and the dev server, the database packages on PostgreSQL), so
# the checks' CPU time costs the wall time little. Either failing fails
# make test. go test -p is two more than CPUs (its default is one per
# CPU): the slots that run test binaries also link them, and e2e, activities
# and store hold theirs for a minute or more while mostly waiting; with
# CPUs+1, matching's tests started 78 s into the run, behind the links of
# the small packages, and ended last; with CPUs+2, at 33 s.
# On 2 cores shared with other work, warm caches: 105-113 s, against
# 162-171 s before the e2e tests ran in parallel, the checks alongside and
# -p at CPUs+2 (two runs of each, back to back); the e2e package took
# 84-88 s of it, against 152-162 s.
test: $(TEMPORAL_CLI)
	@$(MAKE) --no-print-directory -j 2 test-go test-checks

# The matching tests run a second time with -tags purego: the portable
# scoring kernel, the one machines without AVX2 or AVX-512 run
# (matching/lanes.go); the default run checks every vector kernel the CPU has.
test-checks: workflowcheck lint
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./matching/
	$(GO) test -count=1 -tags purego ./matching/

test-go: $(TEMPORAL_CLI)
	INTEGRATION=1 TEMPORAL_CLI=$(CURDIR)/$(TEMPORAL_CLI) $(GO) test -race -count=1 -p $(TEST_PACKAGES_AT_ONCE) -timeout 20m ./...

# Fails on workflow code that is not deterministic (time.Now, goroutines,
# channels, range over a map, os.Stdout, ...): such code breaks replay.
# Silence a false positive with a //workflowcheck:ignore comment that says
# why. It runs as go vet's tool, so both its build (bin/workflowcheck) and
# its results for unchanged packages come from Go's cache: about a minute
# the first time, seconds after that.
workflowcheck:
	@mkdir -p bin
	GOBIN=$(CURDIR)/bin $(GO) install $(WORKFLOWCHECK)
	$(GO) vet -vettool=$(CURDIR)/bin/workflowcheck ./...

# staticcheck, pinned; its build and its analysis results are cached.
lint:
	$(GO) run $(STATICCHECK) ./...

# Unit and workflow tests only: no PostgreSQL or Temporal needed.
test-unit:
	$(GO) test -count=1 ./...

# Headless Chromium checks the demo event's page in the Web UI (pauses, then resumes it).
browser-check: build $(TEMPORAL_CLI)
	DATABASE_URL="$${DATABASE_URL:-$(DEMO_DATABASE_URL)}" ./scripts/browser-check.sh

# End to end on this machine (PostgreSQL, a dev server it starts, the real
# binaries) plus the scoring kernel's benchmarks; rewrites the generated part
# of docs/PERFORMANCE.md. BENCH_SIZES=500,2000,10000 BENCH_RUNS=3 BENCH_AI=1
# BENCH_AI_SIZES=500,4000 choose what runs (internal/bench/main.go lists
# every setting).
bench: build $(TEMPORAL_CLI)
	GO="$(GO)" $(GO) run ./internal/bench

# List quality of the matching package (no database or Temporal): coverage,
# concentration, reciprocity, ties, what tag-stuffing buys and how often
# planted partners are found, on synthetic events of EVAL_SIZES members
# (default 1000,10000) and on EVAL_INPUT=attendees.json if given (its JSON
# shape is in internal/eval/main.go); rewrites the generated part of
# docs/QUALITY.md.
eval:
	$(GO) run ./internal/eval

# The chaos suite of docs/RELIABILITY.md (about 30 minutes): poison rows,
# churn, kill -9, SIGSTOP, cut connections, PostgreSQL and dev-server
# restarts, a soak; prints a table and writes it into docs/RELIABILITY.md.
# It restarts the local PostgreSQL server: run it with nothing else on it.
chaos: $(TEMPORAL_CLI)
	GO="$(GO)" TEMPORAL_CLI=$(CURDIR)/$(TEMPORAL_CLI) ./scripts/chaos.sh

clean:
	rm -f bin/worker bin/starter
