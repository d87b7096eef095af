# Read by `busybox sh -s ARGS` from standard input.
echo "args: $# [$*]"
for a in "$@"; do printf '<%s>' "$a"; done
echo
i=0
while [ $i -lt 3 ]; do i=$((i + 1)); echo "iteration $i"; done
exit 7
