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
# The second lane also runs the big-endian tests of the binaries named third (the
# pool scenario: long, and mostly waiting on its guests' balloons), so the two
# lanes take about as long; the first lane skips those tests by name.
#
# Usage: tests/suites.sh "<le test binaries>" "<le tests to skip>" "<be binaries beside>"
set -uo pipefail
cd "$(dirname "$0")/.."
le_suite=$1
le_skip=$2
be_beside=${3:-}
logs=target/test-logs
mkdir -p "$logs"

# Build every test binary once and find the little-endian suite's among them (by
# name, in the lpar-cmm-tests package); running them directly keeps cargo from
# rebuilding the package with another feature set.
json=$(cargo test --workspace --no-run --message-format=json) || exit 1
binary() {
    local bin
    bin=$(printf '%s\n' "$json" | grep '"package_id":"[^"]*#lpar-cmm-tests@' \
        | grep "\"kind\":\[\"test\"\].*\"name\":\"$1\"" \
        | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | head -n 1)
    if [ -z "$bin" ]; then
        echo "suites: no test binary named $1 in lpar-cmm-tests" >&2
        return 1
    fi
    echo "$bin"
}
bins=()
for name in $le_suite; do
    bin=$(binary "$name") || exit 1
    bins+=("$bin")
done
beside=()
be_skips=()
for name in $be_beside; do
    bin=$(binary "$name") || exit 1
    beside+=("$bin")
    tests=$("$bin" --list --format terse | sed -n 's/: test$//p') || exit 1
    for t in $tests; do be_skips+=(--skip "$t"); done
done
[ ${#be_skips[@]} -eq 0 ] || be_skips+=(--exact)
skips=()
for t in $le_skip; do skips+=(--skip "$t"); done

le() {
    local rc=0
    for bin in "${bins[@]}"; do
        echo "     Running $(basename "$bin") (little-endian image)"
        LPAR_CMM_ENDIAN=le "$bin" "${skips[@]}" || rc=1
    done
    for bin in "${beside[@]}"; do
        echo "     Running $(basename "$bin") (big-endian image, beside)"
        "$bin" || rc=1
    done
    return $rc
}

le > "$logs/le.log" 2>&1 &
le_pid=$!
trap 'pkill -P $le_pid 2>/dev/null; kill $le_pid 2>/dev/null' EXIT
cargo test --workspace -- "${be_skips[@]}"
be_rc=$?
wait $le_pid
le_rc=$?
trap - EXIT
echo
echo "=== second lane: little-endian suite, then $be_beside ($logs/le.log) ==="
cat "$logs/le.log"
if [ $be_rc -ne 0 ] || [ $le_rc -ne 0 ]; then
    echo "suites: big-endian exit $be_rc, little-endian exit $le_rc" >&2
    exit 1
fi
