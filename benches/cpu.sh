#!/usr/bin/env bash
# CPU benchmark: guest workloads run under qemu-riscv64, shoal --engine interp and shoal
# --engine auto (the tiered JIT) in the same run, REPS times each; prints per-workload medians,
# shoal/qemu time ratios, shoal's guest instructions per second and geometric means of the
# ratios. Needs riscv64-linux-gnu-gcc and qemu-riscv64.
#
#   benches/cpu.sh [REPS]        (default 5)
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

printf '%-10s %8s %9s %8s %9s %8s %10s\n' workload qemu_s interp_s ratio jit_s ratio jit_MIPS
ri=() rj=()
for w in "${WORKLOADS[@]}"; do
    name=${w%% *}
    args=${w#* }
    qt=() it=() jt=() mips=()
    for ((r = 0; r < REPS; r++)); do
        t0=$(now)
        qemu-riscv64 "$OUT/$name" $args >/tmp/shoal-bench-qemu.out
        t1=$(now)
        "$SHOAL" run --engine interp "$OUT/$name" $args >/tmp/shoal-bench-interp.out
        t2=$(now)
        "$SHOAL" run --engine auto --stats "$OUT/$name" $args >/tmp/shoal-bench-jit.out 2>/tmp/shoal-bench-stats
        t3=$(now)
        for e in interp jit; do
            if ! cmp -s /tmp/shoal-bench-qemu.out /tmp/shoal-bench-$e.out; then
                echo "$name: shoal ($e) output differs from qemu's" >&2
                exit 1
            fi
        done
        qt+=("$(echo "$t1 - $t0" | bc -l)")
        it+=("$(echo "$t2 - $t1" | bc -l)")
        jt+=("$(echo "$t3 - $t2" | bc -l)")
        mips+=("$(sed -n 's/.* s, \([0-9]*\) M instructions.*/\1/p' /tmp/shoal-bench-stats)")
    done
    q=$(printf '%s\n' "${qt[@]}" | median)
    i=$(printf '%s\n' "${it[@]}" | median)
    j=$(printf '%s\n' "${jt[@]}" | median)
    m=$(printf '%s\n' "${mips[@]}" | median)
    ri+=("$(echo "$i / $q" | bc -l)")
    rj+=("$(echo "$j / $q" | bc -l)")
    printf '%-10s %8.3f %9.3f %8.2f %9.3f %8.2f %10s\n' "$name" "$q" "$i" "${ri[-1]}" "$j" "${rj[-1]}" "$m"
done
geomean() { printf '%s\n' "$@" | awk '{s += log($1); n++} END {printf "%.2f", exp(s / n)}'; }
echo "geomean shoal/qemu time: interp $(geomean "${ri[@]}"), jit $(geomean "${rj[@]}") (lower is better; medians of $REPS runs)"
