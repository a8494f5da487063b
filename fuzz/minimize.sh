#!/bin/sh
# make fuzz-corpus: folds what the last `make fuzz` found (fuzz/target/work/<t>/)
# into the committed corpus (fuzz/corpus/<t>/), minimised with libFuzzer's
# -merge=1 on edge coverage alone (no hit counters, no comparison features): the
# smallest set of inputs that reaches every edge any of them reached.
# Inputs are named by their SHA-1, as libFuzzer names them.
set -eu
cd "$(dirname "$0")"
targets=${FUZZ_TARGETS:-$(ls fuzz_targets | sed 's/\.rs$//')}
bin=target/x86_64-unknown-linux-gnu/release
for t in $targets; do
    [ -x "$bin/$t" ] || { echo "fuzz-corpus: build first (make fuzz)" >&2; exit 1; }
    mkdir -p "target/work/$t"
    rm -rf "target/merged/$t"
    mkdir -p "target/merged/$t"
    "$bin/$t" -merge=1 -use_counters=0 -use_cmp=0 -max_len="${FUZZ_MAX_LEN:-4096}" "target/merged/$t" "corpus/$t" "target/work/$t" \
        >"target/logs/$t.merge.log" 2>&1
    rm -rf "corpus/$t"
    mv "target/merged/$t" "corpus/$t"
    echo "$t: $(ls "corpus/$t" | wc -l) inputs, $(du -sk "corpus/$t" | cut -f1) KiB"
done
