#!/usr/bin/env bash
# The node benchmark: many guests on one in-process node (`shoal loadtest --local`), in one run.
#
#   benches/node.sh [--md] [REPS]          (REPS defaults to 3)
#
# Sections (medians of REPS runs, interleaved so that machine load hits both sides alike):
#   Throughput: GUESTS (2000) short guests (`loadgen work 10`, a small static program of our own)
#     through `shoal loadtest --local` with CONCURRENCY (64) alive at once, against the same
#     program started as separate qemu-riscv64 processes, CONCURRENCY at a time (xargs -P).
#   Memory per idle guest: the peak proportional set size (Pss: resident memory, with pages
#     shared between guests, such as their program's text mapped from the same file, counted
#     once) of shoal running IDLE (200) guests that each touch 64 KiB and sleep, minus that of
#     one such guest, divided by IDLE - 1; and the same for resident set size (VmRSS), which
#     counts a shared page once per guest mapping it.
#   vCPU switch: two guests calling sched_yield on one worker (each call hands the worker to the
#     other guest) against one guest making the same number of calls (each runs itself again);
#     per call.
#   Steal efficiency: 40 CPU-bound guests on 2 workers against 1 worker (speedup).
#
# Progress goes to stderr and the tables to stdout. Needs qemu-riscv64 and riscv64-linux-gnu-gcc.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPS=3
MD=0
GUESTS=${GUESTS:-2000}
CONCURRENCY=${CONCURRENCY:-64}
IDLE=${IDLE:-200}
YIELDS=${YIELDS:-200000}
OUT=target/bench-guests/node
SHOAL=target/release/shoal

die() {
    printf 'node.sh: %s\n' "$*" >&2
    exit 1
}

for arg in "$@"; do
    case $arg in
        --md) MD=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]* | '') die "unknown argument: $arg" ;;
        *) REPS=$arg ;;
    esac
done

command -v qemu-riscv64 >/dev/null || die "qemu-riscv64 not found (Debian package qemu-user)"
cargo build --release --quiet
bash tests/guests/build.sh "$OUT" >&2
LOADGEN=$PWD/$OUT/static/loadgen
SPECS=$(mktemp -d)
trap 'rm -rf "$SPECS"' EXIT

now() { printf '%s\n' "${EPOCHREALTIME/./}"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

# loadtest SPEC [ARGS...]: runs a load test, prints its JSON summary; fails if a guest failed.
loadtest() {
    local spec=$1
    shift
    "$SHOAL" loadtest --local --json --no-code-cache "$@" "$spec"
}

spec() { # name count concurrency args...
    local name=$1 count=$2 concurrency=$3
    shift 3
    local args
    args=$(printf '"%s", ' "$@")
    cat >"$SPECS/$name.toml" <<EOF
[[workload]]
program = "$LOADGEN"
args = [${args%, }]
count = $count
concurrency = $concurrency
EOF
    printf '%s\n' "$SPECS/$name.toml"
}

# --- Throughput -----------------------------------------------------------------------------
many=$(spec many "$GUESTS" "$CONCURRENCY" work 10)
shoal_s=() qemu_s=() waits=() p99s=()
for rep in $(seq "$REPS"); do
    printf 'throughput: run %d/%d\n' "$rep" "$REPS" >&2
    t0=$(now)
    seq "$GUESTS" | xargs -P "$CONCURRENCY" -I{} qemu-riscv64 "$LOADGEN" work 10 >/dev/null
    t1=$(now)
    qemu_s+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1e6 }')")
    summary=$(loadtest "$many")
    [ "$(json "['failed']" <<<"$summary")" = 0 ] || die "guests failed under shoal: $summary"
    shoal_s+=("$(json "['duration_s']" <<<"$summary")")
    waits+=("$(json "['max_runnable_wait_ms']" <<<"$summary")")
    p99s+=("$(json "['latency_ms']['p99']" <<<"$summary")")
done
q=$(printf '%s\n' "${qemu_s[@]}" | median)
s=$(printf '%s\n' "${shoal_s[@]}" | median)
wait_ms=$(printf '%s\n' "${waits[@]}" | median)
p99=$(printf '%s\n' "${p99s[@]}" | median)

# --- Memory per idle guest --------------------------------------------------------------------
# peak_mem SPEC: the highest Pss and Rss (KiB) of a shoal load test while it runs.
peak_mem() {
    "$SHOAL" loadtest --local --json --no-code-cache "$1" >/dev/null &
    local pid=$! pss_peak=0 rss_peak=0 pss rss
    while kill -0 "$pid" 2>/dev/null; do
        read -r pss rss < <(awk '/^Pss:/ { p = $2 } /^Rss:/ { r = $2 } END { print p + 0, r + 0 }' \
            "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0 0)
        if [ "$pss" -gt "$pss_peak" ]; then pss_peak=$pss; fi
        if [ "$rss" -gt "$rss_peak" ]; then rss_peak=$rss; fi
        sleep 0.05
    done
    wait "$pid" || die "the idle load test failed"
    printf '%s %s\n' "$pss_peak" "$rss_peak"
}
printf 'memory: %d idle guests\n' "$IDLE" >&2
idle_many=$(spec idle_many "$IDLE" "$IDLE" idle 2000)
idle_one=$(spec idle_one 1 1 idle 2000)
pss_guest=() rss_guest=()
for rep in $(seq "$REPS"); do
    read -r a_pss a_rss < <(peak_mem "$idle_many")
    read -r b_pss b_rss < <(peak_mem "$idle_one")
    pss_guest+=("$(awk -v a="$a_pss" -v b="$b_pss" -v n="$IDLE" 'BEGIN { print (a - b) / (n - 1) }')")
    rss_guest+=("$(awk -v a="$a_rss" -v b="$b_rss" -v n="$IDLE" 'BEGIN { print (a - b) / (n - 1) }')")
done
kib=$(printf '%s\n' "${pss_guest[@]}" | median)
rss_kib=$(printf '%s\n' "${rss_guest[@]}" | median)

# --- vCPU switch ------------------------------------------------------------------------------
two=$(spec two 2 2 yield "$YIELDS")
one=$(spec one 1 1 yield $((2 * YIELDS)))
switch=() self=()
for rep in $(seq "$REPS"); do
    printf 'switch: run %d/%d\n' "$rep" "$REPS" >&2
    d2=$(loadtest "$two" --workers 1 | json "['duration_s']")
    d1=$(loadtest "$one" --workers 1 | json "['duration_s']")
    switch+=("$(awk -v d="$d2" -v n="$YIELDS" 'BEGIN { print d / (2 * n) * 1e9 }')")
    self+=("$(awk -v d="$d1" -v n="$YIELDS" 'BEGIN { print d / (2 * n) * 1e9 }')")
done
sw=$(printf '%s\n' "${switch[@]}" | median)
se=$(printf '%s\n' "${self[@]}" | median)

# --- Steal efficiency ------------------------------------------------------------------------
par=$(spec par 40 40 work 20000)
w1=() w2=() steals=()
for rep in $(seq "$REPS"); do
    printf 'steal: run %d/%d\n' "$rep" "$REPS" >&2
    w1+=("$(loadtest "$par" --workers 1 | json "['duration_s']")")
    summary=$(loadtest "$par" --workers 2)
    w2+=("$(json "['duration_s']" <<<"$summary")")
    steals+=("$(json "['steals']" <<<"$summary")")
done
t1=$(printf '%s\n' "${w1[@]}" | median)
t2=$(printf '%s\n' "${w2[@]}" | median)
st=$(printf '%s\n' "${steals[@]}" | median)

row() {
    if [ "$MD" = 1 ]; then
        printf '| %s | %s |\n' "$1" "$2"
    else
        printf '%-46s %s\n' "$1" "$2"
    fi
}
[ "$MD" = 1 ] && printf '| measure | result |\n|---|---|\n'
row "$GUESTS guests, $CONCURRENCY at a time: qemu-riscv64" "$(awk -v t="$q" -v n="$GUESTS" 'BEGIN { printf "%.2f s, %.0f guests/s", t, n / t }')"
row "$GUESTS guests, $CONCURRENCY at a time: shoal loadtest" "$(awk -v t="$s" -v n="$GUESTS" 'BEGIN { printf "%.2f s, %.0f guests/s", t, n / t }')"
row "throughput, shoal / qemu" "$(awk -v q="$q" -v s="$s" 'BEGIN { printf "%.1fx", q / s }')"
row "shoal: p99 start-to-exit, max runnable wait" "$(printf '%.1f ms, %.1f ms' "$p99" "$wait_ms")"
row "memory per idle guest: Pss (Rss)" "$(awk -v k="$kib" -v r="$rss_kib" 'BEGIN { printf "%.0f KiB (%.0f KiB)", k, r }')"
row "sched_yield to another guest (1 worker)" "$(printf '%.0f ns' "$sw")"
row "sched_yield to itself (1 worker)" "$(printf '%.0f ns' "$se")"
row "40 CPU-bound guests: 1 worker, 2 workers" "$(printf '%.2f s, %.2f s (%s steals)' "$t1" "$t2" "$st")"
row "steal efficiency: speedup of 2 workers over 1" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.2fx", a / b }')"
