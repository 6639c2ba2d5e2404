#!/usr/bin/env bash
# vaultdev-build.sh: build the vaultdev test server (tools/vaultdev, a real
# Vault core used as a library) into a cache outside the repository, and print
# the binary's path. internal/vaulttest runs the cached binary; it never builds.
#
# The recipe is described in tools/vaultdev/README.md. Run with --help for usage.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly ROOT
readonly SRC=$ROOT/tools/vaultdev
readonly CACHE_ROOT=${UNLEASH_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unleash-rotator}
# Temporary files to remove on exit (a failed or interrupted build).
TMP_FILES=()
trap 'rm -f -- "${TMP_FILES[@]}"' EXIT

usage() {
	cat <<EOF
Usage: ${0##*/} [--force]

Builds tools/vaultdev (an in-memory Vault dev server for the integration tests)
into
  \$CACHE_ROOT/vaultdev-<vault version>/vaultdev
and prints that path on stdout. CACHE_ROOT is \$UNLEASH_ROTATOR_CACHE, else
\${XDG_CACHE_HOME:-\$HOME/.cache}/unleash-rotator (now: $CACHE_ROOT).

The build is skipped when the binary exists and its stamp matches a hash of
tools/vaultdev/{go.mod,go.sum,main.go} and the Go version, so edits rebuild and
later runs on the same machine reuse the binary. Concurrent callers wait for
each other. The first build downloads ~470 MB of modules and takes ~7 min on
2 cores (about 2 GB of RAM to link); a no-op run takes about a second.

Options:
  --force    rebuild even if the stamp matches
  -h, --help show this text
EOF
}

log() { printf 'vaultdev-build: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# vault_version prints the github.com/hashicorp/vault version that
# tools/vaultdev/go.mod requires; it names the cache directory.
vault_version() {
	local v
	v=$(awk '$1 == "github.com/hashicorp/vault" && $2 ~ /^v/ { print $2; exit }' "$SRC/go.mod")
	[[ -n $v ]] || die "no github.com/hashicorp/vault requirement in $SRC/go.mod"
	printf '%s\n' "$v"
}

# source_hash prints a hash of everything that determines the binary.
source_hash() {
	{
		(cd "$SRC" && sha256sum go.mod go.sum main.go)
		go -C "$SRC" env GOVERSION
	} | sha256sum | cut -d' ' -f1
}

main() {
	parse_force "$@"
	command -v go >/dev/null || die "go is not on PATH"
	command -v flock >/dev/null || die "flock (util-linux) is not on PATH"

	local cache_root=$CACHE_ROOT
	[[ $cache_root == /* ]] || cache_root=$PWD/$cache_root
	local dir bin stamp hash
	dir=$cache_root/vaultdev-$(vault_version)
	bin=$dir/vaultdev
	stamp=$dir/vaultdev.stamp
	mkdir -p "$dir"

	# One builder at a time; the others wait, then find the stamp current.
	exec 9>"$dir/.lock"
	flock 9

	hash=$(source_hash)
	if ((!FORCE)) && [[ -x $bin && -f $stamp && $(<"$stamp") == "$hash" ]]; then
		printf '%s\n' "$bin"
		return 0
	fi

	log "building vaultdev (first build takes ~7 min on 2 cores)…"
	local tmp=$bin.tmp.$$ start=$SECONDS
	TMP_FILES+=("$tmp" "$stamp.tmp.$$")
	# No -trimpath: with the default flags the build reuses the packages
	# `make lint` compiled when it vetted tools/vaultdev (.ci/run lints
	# first), where -trimpath recompiled all of Vault: after a vet of
	# tools/monitoringcheck on an empty cache, 1 compile instead of 391.
	go build -C "$SRC" -buildvcs=false -ldflags='-s -w' -o "$tmp" . ||
		die "go build failed"
	mv -f "$tmp" "$bin"
	printf '%s\n' "$hash" >"$stamp.tmp.$$"
	mv -f "$stamp.tmp.$$" "$stamp"
	log "built $bin in $((SECONDS - start)) s"
	printf '%s\n' "$bin"
}

main "$@"
