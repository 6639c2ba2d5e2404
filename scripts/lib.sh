# shellcheck shell=bash
# lib.sh: what the project's scripts share. Source it after defining
# log/die and usage:   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# apt_install PACKAGE...: install Debian packages (as root) without starting
# their services: a policy-rc.d that answers 101 keeps the distribution's
# own PostgreSQL or etcd from starting; the tests run private ones.
apt_install() {
	[[ $(id -u) == 0 ]] || die "$* missing: run 'sudo apt-get install --no-install-recommends $*'"
	command -v apt-get >/dev/null || die "$* missing and there is no apt-get: install them by hand"
	log "installing $* from apt"
	local policy=/usr/sbin/policy-rc.d created=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		created=1
	fi
	apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
	if [[ -n $created ]]; then
		rm -f "$policy"
	fi
}

# parse_force ARG...: the arguments of a build script: --force sets
# FORCE=1, -h/--help prints usage and exits 0, anything else is an error.
# shellcheck disable=SC2034 # FORCE is read by the caller
parse_force() {
	FORCE=0
	while (($#)); do
		case $1 in
		--force) FORCE=1 ;;
		-h | --help)
			usage
			exit 0
			;;
		*)
			usage >&2
			die "unknown argument: $1"
			;;
		esac
		shift
	done
}
