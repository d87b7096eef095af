# trap, signal exit statuses and a shell that ends by killing itself with SIGTERM.
trap 'echo "exit trap (status $?)"' EXIT
trap 'echo "caught USR1"' USR1
kill -USR1 $$
echo "after USR1"
(while :; do :; done) &
pid=$!
kill -TERM "$pid"
wait "$pid"
echo "background job killed by TERM: $?"
(while :; do :; done) &
pid=$!
kill -KILL "$pid"
wait "$pid"
echo "background job killed by KILL: $?"
(exit 3)
echo "subshell exit: $?"
trap - EXIT
trap 'echo "TERM handler"; trap - TERM; kill -TERM $$' TERM
echo "sending TERM to self"
kill -TERM $$
echo "not reached"
