#!/usr/bin/env bash
# Checks the cases in cases.txt against qemu-riscv64 alone, for people adding cases:
# each case runs three times and must give the same stdout and exit status every time, and a
# fourth run under -strace must show no execve (qemu-user would run the new program on the host).
#
#   tests/debian/check-qemu.sh [SYSROOT] [NAME-FILTER]
#
# Prints one line per case: name, exit status, lines of stdout.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
sysroot=${1:-$("$here/../../scripts/sysroot.sh")}
filter=${2:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
cd "$here"
while IFS=$'\t' read -r -a f; do
    [[ ${#f[@]} -eq 0 || ${f[0]} == \#* ]] && continue
    name=${f[0]} stdin=${f[1]} program=${f[2]}
    [[ -n $filter && $name != *$filter* ]] && continue
    args=("${f[@]:3}")
    args=("${args[@]//@CASES@/$here}")
    [[ $stdin == - ]] && stdin=/dev/null
    run() {
        env -i LC_ALL=C TZ=UTC0 PATH=/usr/bin:/bin SHOAL_TEST_SUITE=debian \
            qemu-riscv64 "$@" -L "$sysroot" "$sysroot$program" "${args[@]}" <"$stdin"
    }
    for i in 1 2 3; do
        set +e
        run >"$tmp/out$i" 2>/dev/null
        echo $? >"$tmp/rc$i"
        set -e
    done
    verdict=ok
    if ! cmp -s "$tmp/out1" "$tmp/out2" || ! cmp -s "$tmp/out1" "$tmp/out3" ||
        ! cmp -s "$tmp/rc1" "$tmp/rc2" || ! cmp -s "$tmp/rc1" "$tmp/rc3"; then
        verdict="NONDETERMINISTIC"
    fi
    if run -strace 2>&1 >/dev/null | grep -q 'execve('; then
        verdict="$verdict EXECVE"
    fi
    [[ $verdict == ok ]] || failed=$((failed + 1))
    printf '%-24s status %-3s %5s lines  %s\n' "$name" "$(<"$tmp/rc1")" "$(wc -l <"$tmp/out1")" "$verdict"
done <cases.txt
((failed == 0)) || { echo "$failed case(s) failed" >&2; exit 1; }
