# unleash-rotator — common tasks. `make help` lists them.
#
# Slow-to-build test servers (Unleash from npm, a Vault dev server built from
# Vault's Go packages) and pinned tools are cached outside the repository, in
# $(UNLEASH_ROTATOR_CACHE) (default ~/.cache/unleash-rotator), keyed by version.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO      ?= go
PKGS    ?= ./...
BENCH   ?= .

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/rotator (static, version-stamped; the Dockerfile uses the same script)
	scripts/build.sh bin/rotator

.PHONY: demo
demo: ## run the rotator against a local Unleash with a file sink, and show what it does
	scripts/demo.sh

.PHONY: test-deps
test-deps: ## install the real servers and tools the tests use (PostgreSQL, Unleash 8.2.0, Vault dev server, kube-apiserver + etcd, helm, kustomize)
	scripts/unleash-dev.sh install
	scripts/vaultdev-build.sh >/dev/null
	scripts/kube-apiserver-build.sh >/dev/null
	scripts/tools.sh helm >/dev/null
	scripts/tools.sh kustomize >/dev/null

.PHONY: test
test: test-deps ## run every test, against real Unleash and Vault servers, with the race detector
	$(GO) test -race -count=1 $(PKGS)

.PHONY: test-unit
test-unit: ## the fast loop: go test -short, no server (tests that need one skip and say so)
	$(GO) test -short -count=1 $(PKGS)

.PHONY: lint
lint: ## go vet, golangci-lint and govulncheck (pinned) on every module, shellcheck, no tracked file over 1 MB
	$(GO) vet ./... && (cd tools/vaultdev && $(GO) vet ./...) && (cd tools/monitoringcheck && $(GO) vet ./...)
	lint=$$(scripts/tools.sh golangci-lint); \
	$$lint run ./... && (cd tools/vaultdev && $$lint run ./...) && (cd tools/monitoringcheck && $$lint run ./...)
	@command -v shellcheck >/dev/null || { echo "shellcheck is not installed: apt-get install shellcheck (.ci/run installs it)" >&2; exit 1; }
	shellcheck scripts/*.sh .ci/run
	@big=$$(git ls-files -z | xargs -0 -r stat -c '%s	%n' -- 2>/dev/null | awk -F '\t' '$$1 > 1048576 { print "  " $$2 " (" $$1 " bytes)" }'); \
	if [ -n "$$big" ]; then echo "tracked files over 1 MB (keep builds and data out of git):" >&2; echo "$$big" >&2; exit 1; fi
	scripts/vulncheck.sh

.PHONY: fmt
fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

.PHONY: bench
bench: test-deps ## run the benchmarks (sink cost per rotation, engine pass cost)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem $(PKGS)

.PHONY: bench-e2e
bench-e2e: test-deps ## the rotator vs a real Unleash at 2000 tokens, with ratios: writes BENCHMARKS.md (~10 min)
	scripts/bench-e2e.sh

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## run every fuzz target (Unleash responses, configuration) for FUZZTIME each (default 30s)
	FUZZTIME=$(FUZZTIME) scripts/fuzz.sh

.PHONY: test-faults
test-faults: test-deps ## the long fault suite: Unleash, Vault and the Kubernetes API answering 5xx, 429, slowly, resetting, stopped; full and read-only sinks
	E2E_LONG=1 $(GO) test -race -count=1 -timeout 60m ./internal/e2e/faults/

.PHONY: unleash-up
unleash-up: ## start a local Unleash for experiments; prints the export lines to eval
	@scripts/unleash-dev.sh start

.PHONY: unleash-down
unleash-down: ## stop the local Unleash started by unleash-up (needs UNLEASH_DEV_DIR from its output)
	scripts/unleash-dev.sh stop --purge

.PHONY: test-long test-crashes test-zero-downtime
test-long: test-crashes test-zero-downtime test-faults fuzz ## the long proof suite: crash matrix, zero downtime, faults, fuzzing (`make test` runs their fast parts)

test-crashes: test-deps ## kill the real binary at every checkpoint and at random moments, every mode, retire mode and sink (~3 min)
	E2E_LONG=1 $(GO) test -count=1 -timeout 60m -parallel 16 -run '^TestCrashMatrixLong$$' -v ./internal/e2e/ | grep -Ev '^=== (RUN|PAUSE|CONT|NAME)'

test-zero-downtime: test-deps ## 50 rotations per retire mode under a consumer calling Unleash every second: 0 failed calls (~52 min, paced by Unleash's 60 s token cache)
	E2E_LONG=1 $(GO) test -count=1 -timeout 90m -run '^TestZeroDowntimeLong$$' -v ./internal/e2e/ | grep -Ev '^=== (RUN|PAUSE|CONT|NAME)'
