#!/usr/bin/env bash
# Runs every Go fuzzer of the module (each func FuzzXxx in a _test.go file)
# for FUZZTIME each, one at a time: `go test -fuzz` takes one target per run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-30s}
found=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "== $name ($pkg, $fuzztime)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"
	found=$((found + 1))
done < <(grep -rHoE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+' . | sed -E 's/:func /:/' | sed 's#^\./##' | sort)
if [ "$found" -eq 0 ]; then
	echo "fuzz: no fuzzers found" >&2
	exit 1
fi
echo "fuzz: $found fuzzers ran for $fuzztime each"
