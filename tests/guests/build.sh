#!/usr/bin/env bash
# Builds every tests/guests/*.c twice for riscv64 Linux:
#   OUTDIR/static/NAME   linked with -static
#   OUTDIR/dynamic/NAME  linked against the cross sysroot's shared libc
# A binary is rebuilt only when its source (or this script) is newer than it.
# Usage: tests/guests/build.sh OUTDIR      (CC overrides the compiler)
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-riscv64-linux-gnu-gcc}

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "error: $cc not found; install the gcc-riscv64-linux-gnu package" >&2
    exit 1
fi

mkdir -p "$out/static" "$out/dynamic"
cflags=(-O2 -g0 -Wall -Wextra -Werror -std=gnu11 -pthread)
libs=(-lm)

built=0
for src in "$here"/*.c; do
    name=$(basename "$src" .c)
    for link in static dynamic; do
        bin=$out/$link/$name
        if [ -e "$bin" ] && [ "$bin" -nt "$src" ] && [ "$bin" -nt "$0" ]; then
            continue
        fi
        extra=()
        if [ "$link" = static ]; then
            extra=(-static)
        fi
        # Build to a temporary name so an interrupted build never leaves a stale binary
        # that looks newer than its source.
        "$cc" "${cflags[@]}" "${extra[@]}" -o "$bin.tmp" "$src" "${libs[@]}"
        mv "$bin.tmp" "$bin"
        built=$((built + 1))
    done
done
echo "guests: $built binaries built in $out" >&2
