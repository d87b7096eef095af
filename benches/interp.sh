#!/usr/bin/env bash
# Interpreter benchmark: CPU-bound guest workloads run under shoal (--engine interp) and under
# qemu-riscv64 in the same run, REPS times each; prints per-workload medians, the shoal/qemu time
# ratio and shoal's guest instructions per second. Needs riscv64-linux-gnu-gcc and qemu-riscv64.
#
#   benches/interp.sh [REPS]        (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPS=${1:-5}
OUT=target/bench-guests
mkdir -p "$OUT"
cargo build --release --quiet
SHOAL=target/release/shoal

# name, args
WORKLOADS=(
    "intloop 100000000"
    "fploop 20000000"
    "memstream 20"
    "qsort 1000000"
    "dispatch 3000000"
    "strings 300000"
)

for w in "${WORKLOADS[@]}"; do
    name=${w%% *}
    src=benches/guests/$name.c
    if [[ ! -x $OUT/$name || $src -nt $OUT/$name ]]; then
        riscv64-linux-gnu-gcc -O2 -static -o "$OUT/$name" "$src"
    fi
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

printf '%-10s %10s %10s %8s %12s\n' workload qemu_s shoal_s ratio shoal_MIPS
for w in "${WORKLOADS[@]}"; do
    name=${w%% *}
    args=${w#* }
    qt=() st=() mips=()
    for ((r = 0; r < REPS; r++)); do
        t0=$(now)
        qemu-riscv64 "$OUT/$name" $args >/tmp/shoal-bench-qemu.out
        t1=$(now)
        "$SHOAL" run --engine interp --stats "$OUT/$name" $args >/tmp/shoal-bench-shoal.out 2>/tmp/shoal-bench-stats
        t2=$(now)
        if ! cmp -s /tmp/shoal-bench-qemu.out /tmp/shoal-bench-shoal.out; then
            echo "$name: shoal's output differs from qemu's" >&2
            exit 1
        fi
        qt+=("$(echo "$t1 - $t0" | bc -l)")
        st+=("$(echo "$t2 - $t1" | bc -l)")
        mips+=("$(sed -n 's/.* s, \([0-9]*\) M instructions.*/\1/p' /tmp/shoal-bench-stats)")
    done
    q=$(printf '%s\n' "${qt[@]}" | median)
    s=$(printf '%s\n' "${st[@]}" | median)
    m=$(printf '%s\n' "${mips[@]}" | median)
    printf '%-10s %10.3f %10.3f %8.2f %12s\n' "$name" "$q" "$s" "$(echo "$s / $q" | bc -l)" "$m"
done
echo "ratio = shoal time / qemu time (lower is better); medians of $REPS runs"
