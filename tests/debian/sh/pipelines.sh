# Pipelines, command substitution and the exit status of pipelines.
# Only applets that busybox runs without exec (see tests/README.md) are used in shell cases.
seq 1 200 | sort -rn | head
echo "sum: $(seq 1 100 | awk '{ s += $1 } END { print s }')"
echo "lines: $(seq 1 1000 | awk '/7/ { n++ } END { print n }')"
printf 'b\na\nc\na\nb\na\n' | sort | awk '{ n[$1]++ } END { for (k in n) print n[k], k }' | sort -k1,1nr -k2
echo 'the quick brown fox' | awk '{ print toupper($0) }' | awk '{ sub(/QUICK/, "SLOW"); print }'
seq 1 50 | sort -r | sort -n | tac | head -n 3 | xargs
echo 'one two three four five six seven' | fold -w 10
paste -d: /dev/null /dev/null
seq 1 6 | paste -s -d+
echo "paste sum: $(expr $(seq 1 6 | paste -s -d+ | awk -F+ '{ s = 0; for (i = 1; i <= NF; i++) s += $i; print s }') \* 2)"
echo 'a:b:c:d' | cut -d: -f2,4
seq 1 12 | xargs -n 4 echo row
false | true
echo "false|true -> $?"
true | false
echo "true|false -> $?"
seq 1 5 | { read first; read second; echo "first=$first second=$second"; }
nested=$(echo "outer $(echo "inner $(echo deepest)")")
echo "$nested"
echo "backticks: `expr 6 \* 7`"
