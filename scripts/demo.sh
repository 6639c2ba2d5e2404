#!/usr/bin/env bash
# The demo behind `make demo`: a local Unleash, a few tokens (some about to
# expire), then `rotator plan` and `rotator once` with a file sink writing to
# ./demo-output. It shows what changed, the plan afterwards and the
# retirement log, then stops Unleash and removes what it made. DEMO_KEEP=1
# keeps Unleash running and the output for you to explore.
set -euo pipefail
cd "$(dirname "$0")/.."

# Styles only on a terminal: piped or redirected, the output stays plain.
bold='' dim='' reset=''
if [[ -t 1 ]]; then
	bold=$(tput bold 2>/dev/null || true)
	dim=$(tput dim 2>/dev/null || true)
	reset=$(tput sgr0 2>/dev/null || true)
fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$reset"; }
note() { printf '%s    %s%s\n' "$dim" "$*" "$reset"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/unleash-rotator-demo.XXXXXX")
out=$PWD/demo-output
cleanup() {
	if [[ ${DEMO_KEEP:-} == 1 ]]; then
		printf '\nKept: Unleash at %s, the output in %s, the rotator and its configuration in %s. Explore with:\n' \
			"${UNLEASH_URL:-?}" "$out" "$work"
		printf '    export ROTATOR_CONFIG=%s/config.yaml ROTATOR_LOCK_DIR=%s/locks\n' "$work" "$work"
		printf '    %s/rotator plan\n    %s/rotator rotate --target demo --token checkout-api --yes\n' "$work" "$work"
		printf 'Stop it with: UNLEASH_DEV_DIR=%s scripts/unleash-dev.sh stop --purge; rm -rf %s %s\n' \
			"${UNLEASH_DEV_DIR:-?}" "$work" "$out"
		return
	fi
	if [[ -n ${UNLEASH_DEV_DIR:-} ]]; then
		scripts/unleash-dev.sh stop --purge >/dev/null 2>&1 || true
	fi
	rm -rf "$work" "$out"
}
trap cleanup EXIT

step "Building the rotator"
scripts/build.sh "$work/rotator"
rotator="$work/rotator"
note "$("$rotator" version)"

step "Starting a local Unleash 8.2.0 (first run installs it: about a minute)"
seed=$work/seed.sql
cat >"$seed" <<'SQL'
INSERT INTO projects(id, name) VALUES ('team-a', 'Team A') ON CONFLICT DO NOTHING;
INSERT INTO project_environments(project_id, environment_name)
  VALUES ('team-a', 'development'), ('team-a', 'production') ON CONFLICT DO NOTHING;
SQL
eval "$(UNLEASH_SEED_SQL=$seed scripts/unleash-dev.sh start)"
note "Unleash is at $UNLEASH_URL, with projects default and team-a"

step "Creating tokens, as a team would have over time"
create() { # project name type environment expires-in-days ("" for never)
	local expires="" when="never expires"
	if [[ -n $5 ]]; then
		expires=",\"expiresAt\":\"$(date -u -d "+$5 days" +%Y-%m-%dT%H:%M:%S.000Z)\""
		when="expires in $5 day(s)"
	fi
	curl -sSf -o /dev/null -H "Authorization: $UNLEASH_ADMIN_TOKEN" -H 'Content-Type: application/json' \
		-d "{\"tokenName\":\"$2\",\"type\":\"$3\",\"environment\":\"$4\"$expires}" \
		"$UNLEASH_URL/api/admin/projects/$1/api-tokens"
	printf '    %-14s %-8s %-9s %-12s %s\n' "$2" "$3" "$1" "$4" "$when"
}
create default checkout-api backend production 2
create default storefront frontend production 25
create team-a inventory backend production 1
create team-a reports backend development ""
# Tokens near expiry were made long ago: backdate them, as the rotator judges
# a token by how much of its real lifetime (expiresAt - createdAt) is left.
scripts/unleash-dev.sh psql -q -c "
  UPDATE api_tokens SET created_at = now() - interval '88 days' WHERE token_name = 'checkout-api';
  UPDATE api_tokens SET created_at = now() - interval '30 days' WHERE token_name = 'storefront';
  UPDATE api_tokens SET created_at = now() - interval '89 days' WHERE token_name = 'inventory';
  UPDATE api_tokens SET created_at = now() - interval '200 days' WHERE token_name = 'reports';" >/dev/null
note "(created 30 to 200 days ago: backdated in Unleash's database for the demo)"

mkdir -p "$out"
cat >"$work/config.yaml" <<EOF
# The demo's configuration: every token of both projects, renewed when a
# third of its life is left, published as env files into demo-output/.
unleash:
  url: $UNLEASH_URL
  token_file: $work/unleash-token
schedule: "@every 1h"
defaults:
  renew_before_percent: 33
  lifetime: 30d
  retire:
    mode: log
sinks:
  - name: files
    file:
      dir: $out
      format: env
      fields:
        UNLEASH_URL: $UNLEASH_URL/api
targets:
  - name: demo
    select:
      projects: [default, team-a]
    sinks:
      - sink: files
        path: "{{.Project}}/{{.Environment}}/{{.Name}}.env"
log:
  format: text
EOF
(umask 077 && printf '%s\n' "$UNLEASH_ADMIN_TOKEN" >"$work/unleash-token")
export ROTATOR_CONFIG=$work/config.yaml ROTATOR_LOCK_DIR=$work/locks
unset UNLEASH_ADMIN_TOKEN

step "rotator plan: what a pass would do now, and why (nothing is changed)"
"$rotator" plan
note "checkout-api and inventory have less than a third of their life left: they will be rotated."
note "storefront is not due, but the sink lacks it and its secret is readable: it is published as is."
note "reports never expires: reported and left alone (no_expiry: rotate would replace it)."

step "rotator once: one pass, as a Kubernetes CronJob would run it"
"$rotator" once
note "exit code $? (0: every target is fine)"

step "What the sinks hold now (secrets masked)"
find "$out" -name '*.env' | sort | while read -r f; do
	printf '    %s\n' "${f#"$PWD"/}"
	sed -e 's/^\(UNLEASH_API_TOKEN=\).*/\1<secret>/' -e 's/^/        /' "$f"
done

step "rotator plan again: everything is up to date; the replaced tokens await retirement"
"$rotator" plan

step "The retirement log: a second pass logs each old token as a retirement candidate"
"$rotator" once 2>&1 | grep 'retirement candidate' || true
note "With retire.mode expire or delete, the old tokens would be expired or deleted after the grace period,"
note "once Unleash shows them unused (retire.unseen_for). The secret never appears in a log: the fingerprint does."

step "Done"
if [[ ${DEMO_KEEP:-} != 1 ]]; then
	note "To explore afterwards: DEMO_KEEP=1 make demo (it prints the commands to run)."
fi
