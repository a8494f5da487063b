#!/usr/bin/env bash
# `make test`'s runner, after the build and the lints: every test of the workspace
# (host tests, then the QEMU tests booting the big-endian image) and, at the same
# time, the little-endian suite (the QEMU tests of every subsystem booting the
# little-endian image). Most QEMU tests wait on guests more than they compute, so
# the two suites side by side keep `make test` within 10 minutes on 2 cores.
#
# The big-endian suite prints as it goes; the little-endian suite writes
# target/test-logs/le.log, printed when it ends. Fails when either fails.
#
# Usage: tests/suites.sh "<le test binaries>" "<le tests to skip>"
set -uo pipefail
cd "$(dirname "$0")/.."
le_suite=$1
le_skip=$2
logs=target/test-logs
mkdir -p "$logs"

# Build every test binary once and find the little-endian suite's among them (by
# name, in the lpar-cmm-tests package); running them directly keeps cargo from
# rebuilding the package with another feature set.
json=$(cargo test --workspace --no-run --message-format=json) || exit 1
bins=()
for name in $le_suite; do
    bin=$(printf '%s\n' "$json" | grep '"package_id":"[^"]*#lpar-cmm-tests@' \
        | grep "\"kind\":\[\"test\"\].*\"name\":\"$name\"" \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1)
    if [ -z "$bin" ]; then
        echo "suites: no test binary named $name in lpar-cmm-tests" >&2
        exit 1
    fi
    bins+=("$bin")
done
skips=()
for t in $le_skip; do skips+=(--skip "$t"); done

le() {
    local rc=0
    for bin in "${bins[@]}"; do
        echo "     Running $(basename "$bin") (little-endian image)"
        LPAR_CMM_ENDIAN=le "$bin" "${skips[@]}" || rc=1
    done
    return $rc
}

le > "$logs/le.log" 2>&1 &
le_pid=$!
trap 'pkill -P $le_pid 2>/dev/null; kill $le_pid 2>/dev/null' EXIT
cargo test --workspace
be_rc=$?
wait $le_pid
le_rc=$?
trap - EXIT
echo
echo "=== little-endian suite ($logs/le.log) ==="
cat "$logs/le.log"
if [ $be_rc -ne 0 ] || [ $le_rc -ne 0 ]; then
    echo "suites: big-endian exit $be_rc, little-endian exit $le_rc" >&2
    exit 1
fi
