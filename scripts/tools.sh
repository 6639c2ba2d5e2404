#!/usr/bin/env bash
# Installs the project's pinned Go tools into the shared cache, outside the
# repository, keyed by version, and prints the path of the one asked for.
#
#   scripts/tools.sh golangci-lint     # prints .../golangci-lint-v2.15.0/golangci-lint
#   scripts/tools.sh govulncheck       # prints .../govulncheck-v1.9.0/govulncheck
#   scripts/tools.sh helm              # the Helm CLI (renders charts/unleash-rotator)
#   scripts/tools.sh kustomize         # kustomize, as built into current kubectl
#
# A second call with the same version is instant. Tools are built with the Go
# toolchain on PATH from the module proxy; nothing else is downloaded.
#
#   scripts/tools.sh --check helm      # prints the path if installed, else exits 3
#
# Tests use --check: they never install (`make test-deps` does), so a cold
# build never runs into `go test`'s timeout.
set -euo pipefail

GOLANGCI_LINT_VERSION=v2.15.0
GOVULNCHECK_VERSION=v1.9.0 # the golang.org/x/vuln module
HELM_VERSION=v3.22.0
KUSTOMIZE_VERSION=v5.8.2

cache=${UNLEASH_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unleash-rotator}

usage() {
	echo "usage: $0 [--check] golangci-lint|govulncheck|helm|kustomize" >&2
	exit 2
}

check=false
if [ "${1:-}" = --check ]; then
	check=true
	shift
fi
[ $# -eq 1 ] || usage

case $1 in
golangci-lint)
	pkg=github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	version=$GOLANGCI_LINT_VERSION
	;;
govulncheck)
	pkg=golang.org/x/vuln/cmd/govulncheck
	version=$GOVULNCHECK_VERSION
	;;
helm)
	pkg=helm.sh/helm/v3/cmd/helm
	version=$HELM_VERSION
	;;
kustomize)
	pkg=sigs.k8s.io/kustomize/kustomize/v5
	version=$KUSTOMIZE_VERSION
	;;
*) usage ;;
esac

dir="$cache/tools/$1-$version"
bin="$dir/$1"
if $check && [ ! -x "$bin" ]; then
	echo "$1 $version is not installed: run scripts/tools.sh $1" >&2
	exit 3
fi
if [ ! -x "$bin" ]; then
	mkdir -p "$dir"
	exec 9>"$dir.lock"
	flock 9
	if [ ! -x "$bin" ]; then
		echo "installing $1 $version into $dir (first time only, takes a few minutes)..." >&2
		tmp=$(mktemp -d "$dir.tmp.XXXXXX")
		trap 'rm -rf "$tmp"' EXIT
		GOBIN="$tmp" GOFLAGS=-buildvcs=false go install "$pkg@$version"
		mv "$tmp/$1" "$bin"
	fi
fi
echo "$bin"
