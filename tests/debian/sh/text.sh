# Text processing in the shell with awk, sort, cut, paste, xargs, printf, expr.
data='alice,32,paris
bob,27,berlin
carol,41,paris
dave,19,rome
erin,33,berlin'
echo "$data" | awk -F, '{ age[$3] += $2; n[$3]++ } END { for (c in age) printf "%s %d %.2f\n", c, n[c], age[c] / n[c] }' | sort
echo "$data" | sort -t, -k2,2n | cut -d, -f1 | xargs
echo "$data" | awk -F, '/^(a|e)/ { print $2, $1 }'
echo "$data" | cut -d, -f3 | sort -u
echo "$data" | cut -c1-3 | paste -s -d' '
echo "$data" | awk -F, '$2 > 30 { print NR ": " toupper($1) }'
awk 'BEGIN { printf "%.6f %e %g %d %x %o %c|%-5s|%5s|\n", 355 / 113, 12345.678, 0.0001, -42.9, 255, 8, 65, "ab", "cd" }'
awk 'BEGIN { s = "hello world"; n = split(s, parts, " "); print n, parts[2], length(s), substr(s, 1, 5), index(s, "wor"); gsub(/o/, "0", s); print s }'
printf '%s=%d\n' a 1 b 2 c 3
printf '%5.2f|%-6s|%06d|%x|%o|%e\n' 3.14159 hi 42 255 8 1234.5
echo 'aaa bbb ccc' | awk '{ $2 = "B" $2; print; print NF, $NF }'
seq 1 10 | awk '/3/,/6/' | paste -s -d,
seq 1 30 | awk 'NR % 7 == 0'
echo 'x1 y22 z333' | awk '{ while (match($0, /[0-9]+/)) { print substr($0, RSTART, RLENGTH); $0 = substr($0, RSTART + RLENGTH) } }'
printf 'c\tb\ta\n3\t2\t1\n' | awk -F'\t' '{ for (i = NF; i > 0; i--) printf "%s%s", $i, (i > 1 ? " " : "\n") }'
echo 'one two three' | awk '{ print NF }'
printf 'hello, busybox' | xxd
printf '%s\n' 10 9 100 1 | sort -n | xargs printf '[%s]'
echo
printf '%s\n' b a c | xargs -I{} echo 'item {}'
echo "expr: $(expr index abcdef d) $(expr match abc123 '[a-z]*') $(expr 100 / 7)"
printf 'abc' | sha256sum
printf 'abc' | md5sum
