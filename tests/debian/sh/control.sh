# Loops, functions, case, test, expr and arithmetic.
fib() {
    a=0 b=1 i=0
    while [ "$i" -lt "$1" ]; do
        t=$((a + b)); a=$b; b=$t; i=$((i + 1))
    done
    echo "$a"
}
for n in 0 1 2 10 50 90; do
    echo "fib($n) = $(fib "$n")"
done
classify() {
    case "$1" in
        [0-9]*) echo "$1: number" ;;
        *.txt | *.md) echo "$1: document" ;;
        -*) echo "$1: option" ;;
        '') echo "(empty): nothing" ;;
        *) echo "$1: word" ;;
    esac
}
for w in 42 notes.txt README.md --verbose hello ''; do
    classify "$w"
done
i=0
until [ $i -ge 20 ]; do
    i=$((i + 3))
    [ $((i % 2)) -eq 0 ] && continue
    [ $i -gt 15 ] && break
    printf '%d ' "$i"
done
echo
echo "expr: $(expr 17 % 5) $(expr length hello) $(expr substr abcdef 2 3) $(expr 3 \< 10)"
echo "arith: $((2 ** 10)) $((-7 / 2)) $((-7 % 2)) $((1 << 40)) $((0x7fffffffffffffff + 1))"
test -z "" && echo "test -z ok"
test 3 -lt 4 -a abc != abd && echo "test -a ok"
[ -n "x" ] || echo "never"
count_args() { echo "$# args: $*"; shift 2; echo "after shift: $@"; }
count_args one two three "four five"
set -- x y z
echo "positional: $1 $3 ($#)"
var=hello.world.tar.gz
echo "${var%.*} ${var%%.*} ${var#*.} ${var##*.} ${#var} ${unset:-default} ${var:6:5}"
