#!/bin/sh
# Rebuilds fp_vectors.txt from fpgen.c. Needs a riscv64 Linux cross compiler and either
# qemu-riscv64 (user mode) or a riscv64 host.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
riscv64-linux-gnu-gcc -O1 -static -march=rv64gc -o "$tmp/fpgen" "$dir/fpgen.c"
if [ "$(uname -m)" = riscv64 ]; then
    "$tmp/fpgen" > "$dir/fp_vectors.txt"
else
    qemu-riscv64 "$tmp/fpgen" > "$dir/fp_vectors.txt"
fi
wc -l "$dir/fp_vectors.txt"
