#!/usr/bin/env bash
# fuzz.sh: run every fuzz target of the module (each `func FuzzXxx` in a
# _test.go file) for FUZZTIME each (default 30s), one after the other: `go
# test -fuzz` takes one target of one package at a time. An input that
# fails is saved under the package's testdata/fuzz/, where `go test` replays
# it from then on.
#
#   scripts/fuzz.sh                 # every target, 30 s each
#   FUZZTIME=5s scripts/fuzz.sh     # CI's short bound
#   FUZZTIME=10m scripts/fuzz.sh FuzzAPITokenListings
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-30s}
only=${1:-}
failed=()
count=0
start=$SECONDS
# tools/ is another module, with no fuzz target.
while IFS= read -r file; do
	pkg=./$(dirname "$file")
	while IFS= read -r name; do
		[[ -z $only || $name == "$only" ]] || continue
		count=$((count + 1))
		echo "fuzz: $pkg $name for $fuzztime"
		if ! go test -run '^$' -fuzz "^$name\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | grep -v '^fuzz: elapsed'; then
			failed+=("$pkg $name")
		fi
	done < <(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file")
done < <(grep -rl --include='*_test.go' '^func Fuzz' cmd internal | sort)

if ((count == 0)); then
	echo "fuzz: no fuzz target${only:+ named $only}" >&2
	exit 1
fi
echo "fuzz: $count targets, $fuzztime each, in $((SECONDS - start))s"
if ((${#failed[@]} > 0)); then
	printf 'fuzz: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
