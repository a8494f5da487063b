#!/bin/bash
# make fuzz: runs every fuzz target (or those named in FUZZ_TARGETS) for
# FUZZ_SECONDS each (default 180), FUZZ_JOBS at a time (default: one per core),
# with cargo fuzz's libFuzzer on stable Rust (`-s none`: no sanitizer), starting
# from the committed corpus (fuzz/corpus/<target>/, never written to: new inputs
# go to fuzz/target/work/<target>/), and prints one table row per target:
# executions, executions per second, coverage (libFuzzer's `cov:` edges and
# `ft:` features), corpus size and crashes, with the host's load average before
# and after (exec/s falls with the load). A crash leaves its input in
# fuzz/artifacts/<target>/; make fuzz then fails. To keep one as a regression,
# copy it to fuzz/crashes/<target>/ (make test replays those too).
#
# Two builds: the parsers keep libFuzzer's comparison tracing (it finds magic
# numbers and keywords); the targets in NO_CMP, whose input is a stream of
# small numbers for a state machine (no magic values to find), are built
# without it, which makes them about four times faster at the same coverage.
set -u
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-180}
max_len=${FUZZ_MAX_LEN:-4096}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//')}
NO_CMP="virtio virtio_used pool_policy"
host=$(rustc -vV | sed -n 's/^host: //p')

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked || exit 1
cargo fuzz build -s none || exit 1
cargo fuzz build -s none --no-trace-compares --target-dir target/nocmp || exit 1

bin_of() {
    case " $NO_CMP " in
    *" $1 "*) echo "target/nocmp/$host/release/$1" ;;
    *) echo "target/$host/release/$1" ;;
    esac
}

one() {
    local t=$1
    rm -rf "artifacts/$t"
    mkdir -p "target/work/$t" "artifacts/$t"
    echo "fuzz: $t for ${seconds} s" >&2
    "$(bin_of "$t")" "target/work/$t" "corpus/$t" \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1 -timeout=10 \
        -artifact_prefix="artifacts/$t/" >"target/logs/$t.log" 2>&1
    echo $? >"target/logs/$t.rc"
}

mkdir -p target/work target/logs
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
running=0
for t in $targets; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
    one "$t" &
    running=$((running + 1))
done
wait
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

failed=0
printf '\n%-12s %12s %10s %7s %8s %7s %8s\n' target execs exec/s cov ft corpus crashes
for t in $targets; do
    log="target/logs/$t.log"
    rc=$(cat "target/logs/$t.rc" 2>/dev/null || echo 1)
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
    printf '%-12s %12s %10s %7s %8s %7s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
done
echo "(${seconds} s per target, ${jobs} at a time on $(nproc) cores; load average ${load_before} before, ${load_after} after;"
echo " logs in fuzz/target/logs/, crashes in fuzz/artifacts/)"
exit $failed
