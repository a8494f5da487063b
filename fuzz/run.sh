#!/bin/sh
# make fuzz: runs every fuzz target (or those named in FUZZ_TARGETS) for
# FUZZ_SECONDS each with cargo fuzz on stable Rust (`-s none`: no sanitizer),
# starting from the committed corpus (fuzz/corpus/<target>/, never written to:
# new inputs go to fuzz/target/work/<target>/), and prints one table row per
# target: executions, executions per second, coverage (libFuzzer's `cov:`
# edges and `ft:` features), corpus size and crashes. A crash leaves its input
# in fuzz/artifacts/<target>/; make fuzz then fails. To keep one as a regression,
# copy it to fuzz/crashes/<target>/ (make test replays those too).
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
max_len=${FUZZ_MAX_LEN:-4096}
targets=${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//')}

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || exit 1
cargo fuzz build -s none || exit 1

mkdir -p target/work target/logs
rows=""
failed=0
for t in $targets; do
    rm -rf "artifacts/$t"
    mkdir -p "target/work/$t" "artifacts/$t"
    log="target/logs/$t.log"
    echo "fuzz: $t for ${seconds} s" >&2
    cargo fuzz run -s none "$t" "target/work/$t" "corpus/$t" -- \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 -timeout=10 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    crashes=$(find "artifacts/$t" -type f | wc -l)
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        failed=1
        if [ -z "$execs" ]; then
            execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
        fi
    fi
    rows="$rows$(printf '%-12s %12s %10s %7s %8s %7s %8s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")
"
done
printf '\n%-12s %12s %10s %7s %8s %7s %8s\n' target execs exec/s cov ft corpus crashes
printf '%s' "$rows"
echo "(${seconds} s per target; logs in fuzz/target/logs/, crashes in fuzz/artifacts/)"
exit $failed
