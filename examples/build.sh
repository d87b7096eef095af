#!/usr/bin/env bash
# Rebuilds the bundled example binaries from their sources (needs riscv64-linux-gnu-gcc).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
riscv64-linux-gnu-gcc -Os -static -nostdlib -ffreestanding -fno-stack-protector -march=rv64gc -mabi=lp64d \
    -Wl,--build-id=none -s -o hello-riscv64 hello.c
echo "built examples/hello-riscv64 ($(stat -c %s hello-riscv64) bytes)"
