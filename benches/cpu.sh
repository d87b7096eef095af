#!/usr/bin/env bash
# The JIT benchmark: shoal's default engine (interpreter plus tiered Cranelift JIT) against
# qemu-riscv64 and against the same work done natively on the host, in one run.
#
#   benches/cpu.sh [--interp] [--md] [REPS]          (REPS defaults to 3)
#
#   --interp   add shoal's interpreter tier (--engine interp) as extra columns
#   --md       print the tables as Markdown, for issue notes
#
# Sections:
#   CPU-bound workloads: the C programs in benches/guests/ built for riscv64
#     (riscv64-linux-gnu-gcc -O2 -static) and for the host (gcc -O2), plus Debian riscv64
#     lua5.4 running benches/lua/bench.lua and sqlite3 running benches/sqlite/bench.sql from the
#     sysroot that scripts/sysroot.sh builds (natively with the host's lua5.4 and sqlite3 when
#     installed, "-" otherwise). Each is run REPS times, interleaved qemu, shoal, native
#     (, interp), qemu, shoal, ... so that a change in machine load hits every runner alike; the
#     table shows medians, time ratios, shoal's guest instructions per second (from --stats) and
#     geometric means over all these workloads. Every runner's stdout must be identical, or the
#     script stops with a message.
#   Startup: tiny programs, STARTUP_RUNS runs each under qemu and shoal, medians in milliseconds.
#   Code cache: every workload run twice with one fresh --code-cache directory: cold, then warm.
#
# Progress goes to stderr and the tables to stdout. Timings are wall-clock time, so run it on an
# otherwise idle machine when the figures matter. Needs qemu-riscv64, riscv64-linux-gnu-gcc and
# gcc.
set -euo pipefail
# EPOCHREALTIME and awk's number formatting must use '.' as the decimal point.
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REPS=3
INTERP=0
MD=0
STARTUP_RUNS=${STARTUP_RUNS:-20}
OUT=target/bench-guests
SHOAL=target/release/shoal

# Our own C workloads, in table order, and the arguments sizing each to roughly 0.3-1 s under
# qemu-riscv64.
C_WORKLOADS=(intloop fploop memstream qsort dispatch strings hash pthreads)
declare -A C_ARGS=(
    [intloop]=300000000
    [fploop]=20000000
    [memstream]=20
    [qsort]=1000000
    [dispatch]=5000000
    [strings]=600000
    [hash]=80000
    [pthreads]=600000000
)
# No FMA contraction, so riscv64 (which has fused multiply-add) and x86-64 round alike and print
# the same results.
CFLAGS=(-O2 -ffp-contract=off -pthread -Wall -Wextra -Werror)

die() {
    printf 'cpu.sh: %s\n' "$*" >&2
    exit 1
}

# help: the usage lines of the comment at the top of this file.
help() {
    sed -n '5,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0
}

parse_args() {
    local arg
    for arg in "$@"; do
        case $arg in
            --interp) INTERP=1 ;;
            --md) MD=1 ;;
            -h | --help) help ;;
            *[!0-9]* | '') die "unknown argument '$arg' (see --help)" ;;
            *) REPS=$arg ;;
        esac
    done
    ((REPS > 0)) || die "REPS must be at least 1"
}

require_tools() {
    local tool
    for tool in qemu-riscv64 riscv64-linux-gnu-gcc gcc cargo awk; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
}

# build_guests: every C workload for riscv64 and for the host, plus the startup hello; a binary
# is rebuilt when its source or this script (which holds the flags) is newer.
build_guests() {
    local name src bin
    mkdir -p "$OUT/riscv64" "$OUT/native"
    for name in "${C_WORKLOADS[@]}" hello; do
        src=benches/guests/$name.c
        bin=$OUT/riscv64/$name
        if [[ ! -x $bin || $src -nt $bin || ${BASH_SOURCE[0]} -nt $bin ]]; then
            riscv64-linux-gnu-gcc "${CFLAGS[@]}" -static -o "$bin.tmp" "$src"
            mv "$bin.tmp" "$bin"
        fi
        bin=$OUT/native/$name
        if [[ ! -x $bin || $src -nt $bin || ${BASH_SOURCE[0]} -nt $bin ]]; then
            gcc "${CFLAGS[@]}" -o "$bin.tmp" "$src"
            mv "$bin.tmp" "$bin"
        fi
    done
}

# The workload being measured, set by `workload NAME`:
#   SYSROOT_ARGS  -L SYSROOT for dynamically linked guests, empty for our static ones
#   GUEST         the riscv64 program and its arguments
#   NATIVE        the host program and its arguments; empty when the host has none
#   INPUT         the file given to every runner on stdin
SYSROOT_ARGS=() GUEST=() NATIVE=() INPUT=/dev/null

workload() {
    local name=$1
    SYSROOT_ARGS=() NATIVE=() INPUT=/dev/null
    case $name in
        lua)
            SYSROOT_ARGS=(-L "$SYSROOT")
            GUEST=("$SYSROOT/usr/bin/lua5.4" benches/lua/bench.lua)
            if command -v lua5.4 >/dev/null; then NATIVE=(lua5.4 benches/lua/bench.lua); fi
            ;;
        sqlite)
            SYSROOT_ARGS=(-L "$SYSROOT")
            GUEST=("$SYSROOT/usr/bin/sqlite3" :memory:)
            if command -v sqlite3 >/dev/null; then NATIVE=(sqlite3 :memory:); fi
            INPUT=benches/sqlite/bench.sql
            ;;
        *)
            GUEST=("$OUT/riscv64/$name" "${C_ARGS[$name]}")
            NATIVE=("$OUT/native/$name" "${C_ARGS[$name]}")
            ;;
    esac
}

# The runners, each running the current workload.
run_qemu() { qemu-riscv64 "${SYSROOT_ARGS[@]}" "${GUEST[@]}"; }
# The CPU and startup tables measure shoal as a first run does: no code cache, every region
# compiled in that run. The code cache section shows what a warm cache changes.
run_shoal() { "$SHOAL" run --no-code-cache --stats "${SYSROOT_ARGS[@]}" -- "${GUEST[@]}"; }
run_interp() { "$SHOAL" run --engine interp "${SYSROOT_ARGS[@]}" -- "${GUEST[@]}"; }
run_native() { "${NATIVE[@]}"; }

SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

# timed RUNNER: runs it on INPUT with stdout in $SCRATCH/RUNNER.out and stderr in
# $SCRATCH/RUNNER.err; sets ELAPSED_US to the wall-clock time in microseconds. A failing run
# stops the benchmark.
ELAPSED_US=0
timed() {
    local runner=$1 start end status=0
    start=$EPOCHREALTIME
    "run_$runner" <"$INPUT" >"$SCRATCH/$runner.out" 2>"$SCRATCH/$runner.err" || status=$?
    end=$EPOCHREALTIME
    if ((status != 0)); then
        tail -n 20 "$SCRATCH/$runner.err" >&2
        die "$CURRENT: the $runner run exited with status $status"
    fi
    # EPOCHREALTIME is seconds with six decimals; without the point it is microseconds.
    ELAPSED_US=$((10#${end/./} - 10#${start/./}))
}

# same_output RUNNER...: every runner's stdout must equal qemu's.
same_output() {
    local runner
    for runner in "$@"; do
        if ! cmp -s "$SCRATCH/qemu.out" "$SCRATCH/$runner.out"; then
            diff "$SCRATCH/qemu.out" "$SCRATCH/$runner.out" | head -n 10 >&2 || true
            die "$CURRENT: $runner output differs from qemu-riscv64's"
        fi
    done
}

# median: the median of the numbers on stdin, one per line (blank lines ignored); "-" for none.
median() {
    sort -g | awk '
        NF { v[++n] = $1 }
        END { print n == 0 ? "-" : (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }'
}

# shoal_mips: guest instructions per second from the --stats line of the last shoal run.
shoal_mips() {
    sed -n 's/^shoal: .* s, \([0-9]*\) M instructions\/s$/\1/p' "$SCRATCH/shoal.err" | tail -n 1
}

# print_table: tab-separated rows on stdin, the first the header, printed as aligned text (the
# first column left-aligned, the rest right-aligned) or, with --md, as a Markdown table.
print_table() {
    awk -F '\t' -v md="$MD" '
        { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > width[i]) width[i] = length($i) } }
        NF > cols { cols = NF }
        END {
            for (r = 1; r <= NR; r++) {
                line = md ? "|" : ""
                for (i = 1; i <= cols; i++) {
                    c = cell[r, i]
                    if (md) line = line " " c " |"
                    else line = line (i > 1 ? "  " : "") sprintf(i == 1 ? "%-*s" : "%*s", width[i], c)
                }
                print line
                if (md && r == 1) {
                    line = "|---|"
                    for (i = 2; i <= cols; i++) line = line "---:|"
                    print line
                }
            }
        }'
}

# runners_for_workload: the runners of the current workload in the order they take turns.
runners_for_workload() {
    RUNNERS=(qemu shoal)
    if ((${#NATIVE[@]})); then RUNNERS+=(native); fi
    if ((INTERP)); then RUNNERS+=(interp); fi
}

# measure COUNT: runs the current workload COUNT times with the runners taking turns; sets
# SAMPLES[runner] to its times (microseconds, one per line) and MIPS to shoal's median
# instructions per second ("-" when --stats gave none).
declare -A SAMPLES=()
MIPS=-
measure() {
    local count=$1 r runner mips=""
    SAMPLES=()
    for ((r = 0; r < count; r++)); do
        for runner in "${RUNNERS[@]}"; do
            timed "$runner"
            SAMPLES[$runner]+="$ELAPSED_US"$'\n'
        done
        same_output "${RUNNERS[@]:1}"
        mips+="$(shoal_mips)"$'\n'
    done
    MIPS=$(printf '%s' "$mips" | median)
}

# cpu_section: the CPU-bound workloads table.
cpu_section() {
    local name runner rows=""
    for name in "${C_WORKLOADS[@]}" lua sqlite; do
        CURRENT=$name
        workload "$name"
        runners_for_workload
        printf 'cpu.sh: %s (%s), %d reps\n' "$name" "${RUNNERS[*]}" "$REPS" >&2
        measure "$REPS"
        rows+=$name
        for runner in qemu shoal native interp; do
            rows+=$'\t'$(printf '%s' "${SAMPLES[$runner]:-}" | median)
        done
        rows+=$'\t'$MIPS$'\n'
    done
    echo
    echo "CPU-bound workloads: medians of $REPS runs (seconds; ratios are times, lower is better for shoal)"
    printf '%s' "$rows" | cpu_table | print_table
}

# cpu_table: raw rows (workload, then qemu, shoal, native and interp medians in microseconds or
# "-", then MIPS) on stdin; the formatted table with a geomean row on stdout. A geometric mean
# covers the workloads that have the column.
cpu_table() {
    awk -F '\t' -v interp="$INTERP" '
        function add(col, v) { if (v != "-" && v > 0) { logsum[col] += log(v); count[col]++ } }
        function geo(col) { return count[col] ? exp(logsum[col] / count[col]) : "-" }
        function secs(v) { return v == "-" ? "-" : sprintf("%.3f", v / 1e6) }
        function ratio(a, b) { return (a == "-" || b == "-") ? "-" : sprintf("%.2f", a / b) }
        function fmt(v, f) { return v == "-" ? "-" : sprintf(f, v) }
        function emit(name, q, s, n, i, m, rq, rn, ri) {
            line = name "\t" secs(q) "\t" secs(s) "\t" secs(n) "\t" rq "\t" rn "\t" m
            if (interp) line = line "\t" secs(i) "\t" ri
            print line
        }
        BEGIN {
            header = "workload\tqemu_s\tshoal_s\tnative_s\tshoal/qemu\tshoal/native\tshoal_MIPS"
            if (interp) header = header "\tinterp_s\tinterp/qemu"
            print header
        }
        {
            q = $2; s = $3; n = $4; i = $5; m = $6
            rq = ratio(s, q); rn = ratio(s, n); ri = ratio(i, q)
            add("q", q); add("s", s); add("n", n); add("i", i); add("m", m)
            add("rq", rq); add("rn", rn); add("ri", ri)
            emit($1, q, s, n, i, m, rq, rn, ri)
        }
        END {
            emit("geomean", geo("q"), geo("s"), geo("n"), geo("i"), fmt(geo("m"), "%.0f"),
                 fmt(geo("rq"), "%.2f"), fmt(geo("rn"), "%.2f"), fmt(geo("ri"), "%.2f"))
        }'
}

# startup_section: median start-to-exit times of tiny programs under qemu and shoal.
startup_section() {
    local name label runner rows=""
    for name in hello busybox lua; do
        CURRENT="startup $name"
        NATIVE=() INPUT=/dev/null SYSROOT_ARGS=(-L "$SYSROOT")
        case $name in
            hello) label="hello (ours, static)" SYSROOT_ARGS=() GUEST=("$OUT/riscv64/hello") ;;
            busybox) label="busybox echo hi" GUEST=("$SYSROOT/usr/bin/busybox" echo hi) ;;
            lua) label="lua5.4 -e 'print(1)'" GUEST=("$SYSROOT/usr/bin/lua5.4" -e 'print(1)') ;;
        esac
        runners_for_workload
        printf 'cpu.sh: startup %s (%s), %d runs\n' "$name" "${RUNNERS[*]}" "$STARTUP_RUNS" >&2
        measure "$STARTUP_RUNS"
        rows+=$label
        for runner in qemu shoal interp; do
            rows+=$'\t'$(printf '%s' "${SAMPLES[$runner]:-}" | median)
        done
        rows+=$'\n'
    done
    echo
    echo "Startup: medians of $STARTUP_RUNS runs (milliseconds)"
    printf '%s' "$rows" | awk -F '\t' -v interp="$INTERP" '
        function ms(v) { return v == "-" ? "-" : sprintf("%.1f", v / 1e3) }
        BEGIN {
            header = "program\tqemu_ms\tshoal_ms\tshoal/qemu"
            if (interp) header = header "\tinterp_ms"
            print header
        }
        {
            line = $1 "\t" ms($2) "\t" ms($3) "\t" sprintf("%.2f", $3 / $2)
            if (interp) line = line "\t" ms($4)
            print line
        }' | print_table
}

# code_cache_section: cold against warm code cache. Each workload runs twice with the same fresh
# cache directory: the first run compiles and fills the cache, the second finds its code there.
# The time and the --stats line (regions compiled, regions loaded) of both runs are printed.
code_cache_section() {
    echo
    echo "Code cache: each workload run twice with the same fresh --code-cache directory (cold, then warm)"
    if ((MD)); then echo '```'; fi
    local name cache pass
    for name in "${C_WORKLOADS[@]}" lua sqlite; do
        CURRENT="code cache $name"
        workload "$name"
        cache=$(mktemp -d)
        for pass in cold warm; do
            local start=$EPOCHREALTIME end status=0
            "$SHOAL" run --code-cache "$cache" --stats "${SYSROOT_ARGS[@]}" -- "${GUEST[@]}" \
                <"$INPUT" >"$SCRATCH/cache.out" 2>"$SCRATCH/cache.err" || status=$?
            end=$EPOCHREALTIME
            if ((status != 0)); then
                tail -n 20 "$SCRATCH/cache.err" >&2
                rm -rf "$cache"
                die "$CURRENT: the $pass run exited with status $status"
            fi
            printf '%-7s %-5s %6.3f s  %s\n' "$name" "$pass" "$((10#${end/./} - 10#${start/./}))e-6" \
                "$(grep '^shoal: ' "$SCRATCH/cache.err" | tail -n 1)"
        done
        rm -rf "$cache"
    done
    if ((MD)); then echo '```'; fi
}

parse_args "$@"
require_tools
SYSROOT=$(scripts/sysroot.sh) || die "no Debian riscv64 sysroot (scripts/sysroot.sh failed)"
cargo build --release --quiet
build_guests
CURRENT=
started=$SECONDS
cpu_section
startup_section
code_cache_section
echo
echo "shoal $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) CPUs, ${REPS} reps, $((SECONDS - started)) s"
