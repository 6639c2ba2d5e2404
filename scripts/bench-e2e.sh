#!/usr/bin/env bash
# bench-e2e.sh: the rotator against a real Unleash 8.2.0 at 2000 tokens, side
# by side with what the server itself can do, in one run (`make bench-e2e`).
#
# It starts Unleash (scripts/unleash-dev.sh) and a Vault dev server
# (vaultdev), seeds 2000 API tokens and some features, and measures:
#   - the raw listing GET and the raw create+verify rate at the rotator's
#     concurrency, with tools/loadgen (Go, keep-alive, the rotator's own
#     verification request);
#   - the rotator's first pass (publishing 2000 tokens into one directory),
#     its steady `once` pass (paired with raw GETs), and 500-rotation passes
#     with the file sink (two) and with Vault, each between two raw
#     create+verify runs, each as a whole process: wall time, peak RSS
#     (wait4), CPU, time to its first request, requests and TCP connections
#     (through a counting proxy, loadgen run);
#   - new TCP connections of passes of ~400 requests at concurrency 4 and 8;
#   - a sequential curl+jq rotation script, the baseline, right after each
#     500-rotation file pass;
#   - where a rotation pass's time goes: the rate of its rotation phase
#     alone (first create to last publish, from its log), and passes with
#     the sink on tmpfs (no disk), then also at the lowest CPU priority
#     (nice 19, so Unleash and PostgreSQL get the cores first), two each.
# The rotation passes talk to Unleash directly, as the raw runs do; the
# proxy counts the requests of the other passes.
# It prints the ratios and writes them, with the command and the machine's
# load, to BENCHMARKS.md (BENCH_OUT overrides the path).
#
# Environment: BENCH_TOKENS (2000; at least 3 x BENCH_ROTATIONS + 400),
# BENCH_ROTATIONS (500), BENCH_STEADY_RUNS (7), BENCH_BASELINE (50
# rotations), BENCH_FEATURES (200), BENCH_KEEP=1 keeps the servers and the
# work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tokens=${BENCH_TOKENS:-2000}
rotations=${BENCH_ROTATIONS:-500}
steady_runs=${BENCH_STEADY_RUNS:-7}
baseline_n=${BENCH_BASELINE:-50}
features=${BENCH_FEATURES:-200}
concurrency=4
out=${BENCH_OUT:-$root/BENCHMARKS.md}

log() { printf 'bench-e2e: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
for tool in curl jq; do
	command -v "$tool" >/dev/null || die "$tool is missing: apt-get install $tool"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-e2e.XXXXXX")
chmod 711 "$work" # PostgreSQL runs as its own user in $work/unleash
vault_pid='' shm=''
cleanup() {
	if [[ ${BENCH_KEEP:-} == 1 ]]; then
		log "kept: $work (UNLEASH_DEV_DIR=${UNLEASH_DEV_DIR:-?}, vault pid ${vault_pid:-none})"
		return
	fi
	[[ -n $vault_pid ]] && kill "$vault_pid" 2>/dev/null
	[[ -n $shm ]] && rm -rf "$shm"
	[[ -n ${UNLEASH_DEV_DIR:-} ]] && scripts/unleash-dev.sh stop --purge >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT

load_start=$(cut -d' ' -f1-3 /proc/loadavg)

log "building the rotator and the load tool"
scripts/build.sh "$work/rotator"
go build -o "$work/loadgen" ./tools/loadgen
rotator=$work/rotator loadgen=$work/loadgen
binary_bytes=$(stat -c %s "$rotator")

log "starting Unleash (token limit raised) and Vault"
exports=$(UNLEASH_API_TOKENS_LIMIT=$((tokens * 3)) UNLEASH_DEV_DIR=$work/unleash scripts/unleash-dev.sh start) || die "Unleash did not start"
eval "$exports"
export LOADGEN_TOKEN=$UNLEASH_ADMIN_TOKEN
admin=(-H "Authorization: $UNLEASH_ADMIN_TOKEN")
unleash_addr=${UNLEASH_URL#http://}
vaultdev=$(scripts/vaultdev-build.sh)
"$vaultdev" -listen 127.0.0.1:0 >"$work/vault.env" 2>"$work/vault.log" &
vault_pid=$!
for _ in {1..100}; do
	[[ $(grep -c '^VAULT_' "$work/vault.env") == 2 ]] && break
	kill -0 "$vault_pid" 2>/dev/null || die "vaultdev exited: $(tail -5 "$work/vault.log")"
	sleep 0.1
done
vault_addr=$(sed -n 's/^VAULT_ADDR=//p' "$work/vault.env")
ROTATOR_VAULT_TOKEN=$(sed -n 's/^VAULT_TOKEN=//p' "$work/vault.env")
export ROTATOR_VAULT_TOKEN

log "seeding $features features and $tokens tokens"
for ((i = 0; i < features; i++)); do
	f=$(printf 'feature-%04d' "$i")
	curl -sf -o /dev/null "${admin[@]}" -H 'Content-Type: application/json' -d "{\"name\":\"$f\"}" "$UNLEASH_URL/api/admin/projects/default/features"
	curl -sf -o /dev/null "${admin[@]}" -H 'Content-Type: application/json' \
		-d '{"name":"flexibleRollout","constraints":[{"contextName":"userId","operator":"IN","values":["a","b","c"]}],"parameters":{"rollout":"50","stickiness":"default","groupId":"g"}}' \
		"$UNLEASH_URL/api/admin/projects/default/features/$f/environments/development/strategies"
done
"$loadgen" create -url "$UNLEASH_URL" -n "$tokens" -c "$concurrency" -prefix svc >/dev/null

# psql runs SQL on Unleash's database.
psql() { scripts/unleash-dev.sh psql -qAt -c "$1"; }
# make_due backdates the current (newest) token of the lineages numbered
# [from, to): 88 of 90 days used up. A lineage rotated before has the
# rotator's replacement as its current token.
make_due() {
	psql "UPDATE api_tokens t SET created_at = now() - interval '88 days', expires_at = now() + interval '2 days'
	      WHERE t.token_name ~ '^svc-[0-9]{4}([.]rot-.*)?$' AND substr(t.token_name, 5, 4)::int >= $1 AND substr(t.token_name, 5, 4)::int < $2
	        AND NOT EXISTS (SELECT 1 FROM api_tokens u WHERE split_part(u.token_name, '.', 1) = split_part(t.token_name, '.', 1) AND u.created_at > t.created_at)" >/dev/null
}

# prune deletes the tokens that rotations replaced (the rotator, in retire
# mode log, leaves them), so that every rotation pass lists $tokens tokens.
prune() {
	psql "DELETE FROM api_tokens t USING api_tokens u
	      WHERE t.token_name ~ '^svc-' AND u.token_name ~ '^svc-'
	        AND split_part(u.token_name, '.', 1) = split_part(t.token_name, '.', 1) AND u.created_at > t.created_at" >/dev/null
}

# config writes a configuration: $1 name, $2 sink yaml, $3 concurrency, $4
# Unleash's address (the counting proxy's by default).
config() {
	cat >"$work/$1.yaml" <<EOF
unleash:
  url: http://${4:-127.0.0.1:$proxy_port}
  token_file: $work/unleash-token
schedule: "@every 1h"
concurrency: $3
defaults:
  renew_before_percent: 33
  lifetime: 90d
  retire: { mode: log }
sinks:
  - name: out
$2
targets:
  - name: bench
    select: { projects: [default], name: "^svc-[0-9]{4}$" }
    sinks:
      - { sink: out, path: "{{.Name}}.env" }
log: { format: json, level: info }
EOF
}
(umask 077 && printf '%s\n' "$UNLEASH_ADMIN_TOKEN" >"$work/unleash-token")
proxy_port=$((20000 + SRANDOM % 12000))
mkdir -p "$work/files" "$work/locks"
config file "    file: { dir: $work/files, format: env }" "$concurrency"
config vault "    vault: { address: $vault_addr, mount: secret, auth: { method: token } }" "$concurrency"
config file8 "    file: { dir: $work/files, format: env }" 8
config file-direct "    file: { dir: $work/files, format: env }" "$concurrency" "$unleash_addr"
config vault-direct "    vault: { address: $vault_addr, mount: secret, auth: { method: token } }" "$concurrency" "$unleash_addr"
# tmpfs: the decomposition passes write to memory instead of the disk.
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]]; then
	shm=$(mktemp -d /dev/shm/bench-e2e.XXXXXX)
	config file-tmpfs "    file: { dir: $shm/files, format: env }" "$concurrency" "$unleash_addr"
fi
export ROTATOR_LOCK_DIR=$work/locks

# pass runs `rotator once` with configuration $1 (preceded by the command
# in $WRAP, if any) and prints loadgen's figures (wall_s first_request_ms
# conns requests max_rss_kb user_s sys_s exit) and phase_s and
# phase_rotations, for the rotations it made, on one line. Through the
# counting proxy unless the configuration talks to Unleash directly.
pass() {
	local figures
	# shellcheck disable=SC2086 # WRAP is a command and its arguments
	figures=$(ROTATOR_CONFIG=$work/$1.yaml "$loadgen" run -listen "127.0.0.1:$proxy_port" -to "$unleash_addr" -- ${WRAP:-} "$rotator" once 2>"$work/pass.log")
	cat "$work/pass.log" >>"$work/rotator-$1.log"
	printf '%s %s\n' "$figures" "$(phase <"$work/pass.log")"
}
# phase prints how long the rotation phase of the pass whose log it reads
# took, from its first "creating replacement" to its last "published", and
# how many replacements it created.
phase() {
	jq -r 'select(.msg == "creating replacement" or .msg == "published" or .msg == "created replacement") | [.msg, .time[11:]] | @tsv' 2>/dev/null |
		awk -F'\t' '{split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3]; if (s < prev - 43200) s += 86400; prev = s}
			$1 == "creating replacement" && (first == "" || s < first) {first = s}
			$1 == "published" && s > last {last = s}
			$1 == "created replacement" {n++}
			END {printf "phase_s=%.3f phase_rotations=%d\n", (first == "" ? 0 : last - first), n}'
}
# field prints the value of key $1 in the key=value line $2.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }
# stats prints "median (min-max)" of its arguments.
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "%.3g (%.3g-%.3g)", m, v[1], v[NR]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

log "first pass: publishing $tokens tokens into one directory"
first=$(pass file)
[[ $(field exit "$first") == 0 ]] || die "first pass failed: see $work/rotator-file.log"

log "steady passes and the raw listing GET, interleaved ($steady_runs each)"
declare -a steady_wall steady_ratio steady_rss steady_first steady_cpu steady_requests get_ms
for ((i = 0; i < steady_runs; i++)); do
	s=$(pass file)
	g=$("$loadgen" get -url "$UNLEASH_URL" -n 3 -c 1)
	w=$(field wall_s "$s")
	p=$(field p50_ms "$g")
	steady_wall+=("$w") steady_rss+=("$(field max_rss_kb "$s")") steady_first+=("$(field first_request_ms "$s")")
	steady_cpu+=("$(awk -v u="$(field user_s "$s")" -v y="$(field sys_s "$s")" 'BEGIN {print u + y}')")
	get_ms+=("$p") steady_ratio+=("$(awk -v w="$w" -v p="$p" 'BEGIN {printf "%.2f", w * 1000 / p}')")
	steady_requests+=("$(field requests "$s")/$(field conns "$s")")
done

# raw_rate prints the server's raw create+verify rate at the rotator's
# concurrency, over $rotations operations, and deletes the tokens it made.
raw_rate() {
	local r
	r=$("$loadgen" create -url "$UNLEASH_URL" -n "$rotations" -c "$concurrency" -verify -prefix "raw$1")
	psql "DELETE FROM api_tokens WHERE token_name LIKE 'raw%'" >/dev/null
	field rate "$r"
}
# rotate makes the tokens [$2, $2+rotations) due and runs a pass with
# configuration $1, between two raw rates: the machine's load changes by
# the minute, so the pass is compared with the mean of the two. It prints
# the pass's figures, then raw_before= and raw_after=.
rotate() {
	local before after p
	prune
	before=$(raw_rate "b$2")
	make_due "$2" $(($2 + rotations))
	p=$(pass "$1")
	after=$(raw_rate "a$2")
	[[ $(field exit "$p") == 0 ]] || log "warning: a $1 rotation pass exited $(field exit "$p")"
	printf '%s raw_before=%s raw_after=%s\n' "$p" "$before" "$after"
}
# pass_rate prints the rotations/s of a rotate line, raw_mean the mean of
# the raw rates around it.
pass_rate() { awk -v n="$rotations" -v w="$(field wall_s "$1")" 'BEGIN {printf "%.1f", n / w}'; }
# phase_rate prints the rotations/s of the rotation phase of a rotate line.
phase_rate() { awk -v n="$(field phase_rotations "$1")" -v w="$(field phase_s "$1")" 'BEGIN {printf "%.1f", (w > 0 ? n / w : 0)}'; }
raw_mean() { awk -v a="$(field raw_before "$1")" -v b="$(field raw_after "$1")" 'BEGIN {printf "%.1f", (a + b) / 2}'; }

# baseline runs the sequential curl+jq rotation script $baseline_n times
# (tokens named curl<$1>-<i>) and prints its rotations/s. It runs right
# after each file rotation pass, so that the two are compared under the
# same load.
baseline() {
	local start i secret
	mkdir -p "$work/baseline"
	start=$(date +%s.%N)
	for ((i = 0; i < baseline_n; i++)); do
		secret=$(curl -sf "${admin[@]}" -H 'Content-Type: application/json' \
			-d "{\"tokenName\":\"curl$1-$i\",\"type\":\"backend\",\"environment\":\"development\",\"expiresAt\":\"$(date -u -d '+90 days' +%Y-%m-%dT%H:%M:%S.000Z)\"}" \
			"$UNLEASH_URL/api/admin/projects/default/api-tokens" | jq -r .secret)
		curl -sf -o /dev/null -H "Authorization: $secret" "$UNLEASH_URL/api/client/features"
		printf 'UNLEASH_API_TOKEN=%s\n' "$secret" >"$work/baseline/.curl-$i.env.tmp"
		mv "$work/baseline/.curl-$i.env.tmp" "$work/baseline/curl-$i.env"
	done
	awk -v n="$baseline_n" -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", n / (e - s)}'
}

log "$rotations rotations with the file sink, twice, each between two raw create+verify runs and followed by the curl+jq script ($baseline_n rotations)"
rot_file1=$(rotate file-direct 0)
baseline1=$(baseline 1)

log "new TCP connections: 200 rotations (~400 requests) at concurrency 4 and 8"
make_due "$rotations" $((rotations + 200))
conns4=$(pass file)
make_due $((rotations + 200)) $((rotations + 400))
conns8=$(pass file8)

rot_file2=$(rotate file-direct $((rotations + 400)))
baseline2=$(baseline 2)

log "Vault: first pass, then $rotations rotations between two raw runs"
vault_first=$(pass vault)
rot_vault=$(rotate vault-direct $((2 * rotations + 400)))

log "the binary's floor: rotator version, $steady_runs times"
declare -a floor_rss floor_wall
for ((i = 0; i < steady_runs; i++)); do
	v=$("$loadgen" run -listen "127.0.0.1:$proxy_port" -to "$unleash_addr" -- "$rotator" version 2>/dev/null)
	floor_rss+=("$(field max_rss_kb "$v")") floor_wall+=("$(awk -v w="$(field wall_s "$v")" 'BEGIN {print w * 1000}')")
done

rot_tmpfs='' rot_nice='' rot_tmpfs2='' rot_nice2=''
if [[ -n $shm ]]; then
	log "where a rotation pass's time goes: $rotations rotations with the sink on tmpfs, then also at nice 19"
	cp -a "$work/files" "$shm/files"
	rot_tmpfs=$(rotate file-tmpfs 0)
	rot_nice=$(WRAP="nice -n 19" rotate file-tmpfs $((rotations + 400)))
	rot_tmpfs2=$(rotate file-tmpfs 0)
	rot_nice2=$(WRAP="nice -n 19" rotate file-tmpfs $((rotations + 400)))
else
	log "/dev/shm is not a tmpfs: no decomposition of the rotation passes"
fi

load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the figures ---------------------------------------------------------
first_wall=$(field wall_s "$first")
declare -a file_rates file_ratios file_phase_ratios raw_rates
for line in "$rot_file1" "$rot_file2"; do
	file_rates+=("$(pass_rate "$line")")
	file_ratios+=("$(ratio "$(pass_rate "$line")" "$(raw_mean "$line")")")
	file_phase_ratios+=("$(ratio "$(phase_rate "$line")" "$(raw_mean "$line")")")
	raw_rates+=("$(field raw_before "$line")" "$(field raw_after "$line")")
done
steady_median=$(stats "${steady_wall[@]}" | cut -d' ' -f1)
# bound is the best whole-pass ratio a pass could reach if its rotations
# went exactly as fast as the raw runs: the raw time of the rotations over
# that time plus the fixed part of a pass (a steady pass: start, listing,
# reading every destination).
bound=$(awk -v n="$rotations" -v r="$(raw_mean "$rot_file1")" -v f="$steady_median" 'BEGIN {t = n / r; printf "%.2f", t / (t + f)}')
# decomposition prints "whole-pass ratios | rotation-phase ratios" of two
# rotate lines, or "not measured".
decomposition() {
	if [[ -z $1 ]]; then
		echo "not measured (no tmpfs) | not measured"
		return
	fi
	echo "$(ratio "$(pass_rate "$1")" "$(raw_mean "$1")")×, $(ratio "$(pass_rate "$2")" "$(raw_mean "$2")")× | $(ratio "$(phase_rate "$1")" "$(raw_mean "$1")")×, $(ratio "$(phase_rate "$2")" "$(raw_mean "$2")")×"
}
vault_rate=$(pass_rate "$rot_vault")
vault_raw=$(raw_mean "$rot_vault")
peak_rss=$(for p in "$first" "$rot_file1" "$rot_file2" "$conns4" "$conns8" "$vault_first" "$rot_vault" "$rot_tmpfs" "$rot_nice" "$rot_tmpfs2" "$rot_nice2"; do field max_rss_kb "$p"; done |
	cat - <(printf '%s\n' "${steady_rss[@]}") | sort -n | tail -1)

report=$(
	cat <<EOF
# Benchmarks

Measured by \`make bench-e2e\` (scripts/bench-e2e.sh) on $(date -u +%Y-%m-%d), against a real
Unleash 8.2.0 (Node 22, PostgreSQL 15) and a Vault dev server on the same machine:
$(nproc) cores, load average $load_start at the start and $load_end at the end
(the machine is shared: read the ratios, which pair runs made minutes apart, more than the
absolute times). $tokens API tokens, $features features; rotator concurrency $concurrency; the rotator is
built by scripts/build.sh ($(awk -v b="$binary_bytes" 'BEGIN {printf "%.1f", b / 1048576}') MiB). Every rotator figure is a whole
\`rotator once\` process: wall time, peak RSS (wait4), CPU, and, through a counting TCP proxy,
the time to its first request and the connections it opened.

| what | measured | limit |
|---|---|---|
| requests / TCP connections per steady \`once\` pass | $(printf '%s\n' "${steady_requests[@]}" | sort -u | paste -sd' ') | 1 request |
| steady \`once\` vs one raw GET of the same listing (pairs) | $(stats "${steady_ratio[@]}")× | ≤ 1.5× |
| $rotations rotations, file sink: rotations/s vs raw create+verify/s around the pass (2 passes) | ${file_ratios[0]}×, ${file_ratios[1]}× | ≥ 0.9× |
| same, rotation phase only (first create to last publish, from the pass's log) | ${file_phase_ratios[0]}×, ${file_phase_ratios[1]}× | — |
| same, vs a sequential curl+jq script (run right after each pass) | $(ratio "${file_rates[0]}" "$baseline1")×, $(ratio "${file_rates[1]}" "$baseline2")× | ≥ 15× |
| $rotations rotations, Vault sink: rotations/s vs raw create+verify/s around the pass | $(ratio "$vault_rate" "$vault_raw")× | — |
| first pass publishing $tokens tokens into one directory | ${first_wall} s | a few seconds |
| new TCP connections, 200 rotations, concurrency 4 / 8 ($(field requests "$conns4") / $(field requests "$conns8") requests) | $(field conns "$conns4") / $(field conns "$conns8") | ≈ concurrency |
| peak RSS, any pass at $tokens tokens | $(awk -v k="$peak_rss" 'BEGIN {printf "%.1f MiB (%.1f MB)", k / 1024, k * 1024 / 1e6}') | ≤ 40 MB |

Details (median (min-max) where repeated):

| figure | value |
|---|---|
| raw listing GET ($tokens tokens), ms | $(stats "${get_ms[@]}") |
| steady \`once\`, wall s | $(stats "${steady_wall[@]}") |
| steady \`once\`, CPU s (user+sys) | $(stats "${steady_cpu[@]}") |
| steady \`once\`, peak RSS KiB | $(stats "${steady_rss[@]}") |
| time to first request, ms | $(stats "${steady_first[@]}") |
| the binary's floor (\`rotator version\`): wall ms / peak RSS KiB | $(stats "${floor_wall[@]}") / $(stats "${floor_rss[@]}") |
| first pass: wall s / CPU s / peak RSS KiB / connections | $first_wall / $(awk -v u="$(field user_s "$first")" -v y="$(field sys_s "$first")" 'BEGIN {print u + y}') / $(field max_rss_kb "$first") / $(field conns "$first") |
| raw create+verify at concurrency $concurrency, per s (before and after each file pass; around the Vault pass) | ${raw_rates[*]}; $(field raw_before "$rot_vault") $(field raw_after "$rot_vault") |
| $rotations rotations, file: rotations/s (each pass) | ${file_rates[*]} |
| $rotations rotations, file: wall s / CPU s / peak RSS KiB (first pass of the two) | $(field wall_s "$rot_file1") / $(awk -v u="$(field user_s "$rot_file1")" -v y="$(field sys_s "$rot_file1")" 'BEGIN {print u + y}') / $(field max_rss_kb "$rot_file1") |
| Vault first pass: wall s / peak RSS KiB | $(field wall_s "$vault_first") / $(field max_rss_kb "$vault_first") |
| $rotations rotations, Vault: rotations/s / wall s / peak RSS KiB | $vault_rate / $(field wall_s "$rot_vault") / $(field max_rss_kb "$rot_vault") |
| curl+jq baseline, rotations/s ($baseline_n sequential: create, jq, verify, write, rename; after each file pass) | $baseline1 $baseline2 |
| binary size, bytes | $binary_bytes |

Where a rotation pass's time goes ($rotations rotations, file sink, each pass between two raw
create+verify runs; the rotation phase runs from the pass's first create to its last publish):

| pass | rotations/s vs raw: whole pass | rotation phase |
|---|---|---|
| sink on disk (the two passes above) | ${file_ratios[0]}×, ${file_ratios[1]}× | ${file_phase_ratios[0]}×, ${file_phase_ratios[1]}× |
| sink on tmpfs (no disk writes) | $(decomposition "$rot_tmpfs" "$rot_tmpfs2") |
| sink on tmpfs, rotator at \`nice -n 19\` (Unleash and PostgreSQL get the CPU first) | $(decomposition "$rot_nice" "$rot_nice2") |

What bounds them, from the same run:

- Steady pass: the binary's start alone (\`rotator version\`, median) is $(ratio "$(stats "${floor_wall[@]}" | cut -d' ' -f1)" "$(stats "${get_ms[@]}" | cut -d' ' -f1)")× the raw GET; the
  pass then reads every destination ($tokens reads) and plans every lineage, on the same 2 cores as Unleash.
- Rotations: a pass first lists and reads everything, as a steady pass does (median ${steady_median} s), before it
  knows what to rotate; the raw runs only create and verify. Even if its rotations went exactly as fast as the
  raw runs, a whole pass could reach at most ${bound}× here. Then each rotation also writes its file durably
  (fsync of the file and, shared between concurrent writes, of the directory) and reads it back, and the
  rotator's own CPU (decoding, planning, logging, the sink's system calls) competes with Unleash and
  PostgreSQL for the same $(nproc) cores, where the raw runs only make requests. The table above takes these
  apart: the rotation phase alone; without the disk (tmpfs); and without the disk and with Unleash first on
  the CPU (nice).
- Peak RSS: the binary's floor (\`rotator version\`, median $(stats "${floor_rss[@]}" | cut -d' ' -f1) KiB, most of it the binary's own pages), plus
  what a pass holds for $tokens lineages and the garbage between two collections (the rotator runs the
  collector at GOGC=50 unless GOGC is set).

Command: \`make bench-e2e\` (or \`scripts/bench-e2e.sh\`; BENCH_TOKENS=$tokens BENCH_ROTATIONS=$rotations BENCH_STEADY_RUNS=$steady_runs BENCH_BASELINE=$baseline_n BENCH_FEATURES=$features).
Go benchmarks of the parts: \`go test -run '^\$' -bench 'PutDirSize|Get|ListAPITokens' ./internal/sinks/file/ ./internal/unleash/\`.
EOF
)
printf '%s\n' "$report" >"$out"
printf '%s\n' "$report"
log "wrote $out"
