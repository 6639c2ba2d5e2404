#!/usr/bin/env bash
# Builds the rotator binary, the one way both `make build` and the Dockerfile
# use: static (CGO_ENABLED=0), -trimpath, stripped, with version, commit and
# build date stamped into `rotator version`.
#
#   scripts/build.sh [OUTPUT]        # default: bin/rotator
#
# VERSION, COMMIT and BUILD_DATE override what is derived from git (the
# Docker build has no .git, and passes them as build arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-bin/rotator}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}
build_date=${BUILD_DATE:-$(date -u +%Y-%m-%dT%H:%M:%SZ)}

CGO_ENABLED=0 go build -trimpath \
	-ldflags "-s -w -X main.version=$version -X main.commit=$commit -X main.date=$build_date" \
	-o "$out" ./cmd/rotator
