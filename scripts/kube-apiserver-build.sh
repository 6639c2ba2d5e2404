#!/usr/bin/env bash
# kube-apiserver-build.sh: build a real kube-apiserver from the Go module
# proxy into a cache outside the repository, install Debian's etcd, and print
# the binary's path. internal/kubetest runs the cached binary against etcd; it
# never builds.
#
# The recipe is ../shared/reference/kubernetes.md (c1): a throw-away module
# that requires k8s.io/kubernetes and pins each staging module it replaces with
# ./staging/... to the matching v0.<minor>.<patch>. Run with --help for usage.
set -euo pipefail

readonly KUBE_VERSION=${KUBE_VERSION:-1.37.2}
readonly CACHE_ROOT=${UNLEASH_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unleash-rotator}
TMP_DIRS=()
trap 'rm -rf -- "${TMP_DIRS[@]}"' EXIT

usage() {
	cat <<EOF
Usage: ${0##*/} [--force]

Builds kube-apiserver v$KUBE_VERSION from the Go module proxy into
  \$CACHE_ROOT/kube-apiserver-v$KUBE_VERSION/kube-apiserver
(CACHE_ROOT: \$UNLEASH_ROTATOR_CACHE, else \${XDG_CACHE_HOME:-\$HOME/.cache}/unleash-rotator;
now $CACHE_ROOT), installs etcd-server from Debian when it is missing (as
root), and prints the binary's path on stdout.

A cached binary that reports its version is reused: a second run takes well
under a second. The first build downloads about 85 MB of modules and compiles
for 10-13 minutes on 2 cores (about 600 CPU-seconds, 2.4 GB of RAM, 2.7 GB of
Go build cache). Concurrent callers wait for each other.

Options:
  --force    rebuild even if the cached binary is current
  -h, --help show this text
EOF
}

log() { printf 'kube-apiserver-build: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

install_etcd() {
	command -v etcd >/dev/null && return
	apt_install etcd-server
	command -v etcd >/dev/null || die "apt installed etcd-server but etcd is not on PATH"
}

build() {
	local out=$1 minor patch staging tmp gomodcache mod m
	minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
	patch=$(cut -d. -f3 <<<"$KUBE_VERSION")
	staging=v0.$minor.$patch
	tmp=$(mktemp -d)
	TMP_DIRS+=("$tmp")
	cd "$tmp"
	go mod init example.com/kube-apiserver-build >/dev/null 2>&1
	log "downloading k8s.io/kubernetes@v$KUBE_VERSION"
	go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" >/dev/null
	gomodcache=$(go env GOMODCACHE)
	mod=$gomodcache/cache/download/k8s.io/kubernetes/@v/v$KUBE_VERSION.mod
	# k8s.io/kubernetes replaces each staging module with ./staging/...; those
	# replaces do not apply to a dependent module, so pin each one instead.
	while read -r m; do
		go mod edit "-replace=$m=$m@$staging"
	done < <(awk '/=> \.\/staging/ { print $1 }' "$mod")
	go mod edit "-require=k8s.io/kubernetes@v$KUBE_VERSION"
	cp "$gomodcache/k8s.io/kubernetes@v$KUBE_VERSION/cmd/kube-apiserver/apiserver.go" main.go
	chmod u+w main.go
	go mod tidy >&2
	log "compiling (10-13 min on 2 cores the first time)"
	# Keep these flags identical from build to build: -trimpath and the
	# ldflags are part of the build cache key.
	CGO_ENABLED=0 go build -trimpath -buildvcs=false \
		-ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
		-o "$out" .
}

main() {
	parse_force "$@"
	command -v go >/dev/null || die "go is not on PATH"
	command -v flock >/dev/null || die "flock (util-linux) is not on PATH"
	install_etcd

	local cache_root=$CACHE_ROOT dir bin
	[[ $cache_root == /* ]] || cache_root=$PWD/$cache_root
	dir=$cache_root/kube-apiserver-v$KUBE_VERSION
	bin=$dir/kube-apiserver
	mkdir -p "$dir"
	exec 9>"$dir/.lock"
	flock 9
	if ((!FORCE)) && [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -qx "Kubernetes v$KUBE_VERSION"; then
		printf '%s\n' "$bin"
		return 0
	fi
	local start=$SECONDS
	build "$bin.tmp.$$"
	mv -f "$bin.tmp.$$" "$bin"
	log "built $bin in $((SECONDS - start)) s"
	printf '%s\n' "$bin"
}

main "$@"
