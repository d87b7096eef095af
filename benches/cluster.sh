#!/usr/bin/env bash
# The cluster benchmark: a local cluster of 3 coordinators and 2 nodes on loopback, started in a
# fresh temporary directory with `shoal cluster up` and stopped (and removed) at the end, also on
# failure or Ctrl-C.
#
#   benches/cluster.sh [--md] [N]          (N defaults to 200)
#
# Sections, each guest being examples/hello-riscv64 with no arguments:
#   Submit throughput: N `shoal submit` (without --wait) issued by CLIENTS (8) client processes
#     at once; wall time from starting the first to the last acknowledgement (a submit is acknowledged once
#     raft has committed it), as guests per second. Then `shoal ps --json` is polled (for at most
#     60 s) until none of those guests is pending, assigned or running, and the guests that
#     exited 0 are counted.
#   Placement latency: over those guests, p50 and p99 of started_ms - submitted_ms (submit to
#     running on a node, as the cluster records it) and of finished_ms - submitted_ms.
#   First output: WAIT_RUNS (20) sequential `shoal submit --wait`, each timed from its start to
#     the first byte on its stdout; median and p90. Every run must exit 0 and print what
#     `shoal run` prints.
#   Leader failover: ROUNDS (5) times, the leader is killed with SIGKILL, then `cluster status`
#     and `submit` are each polled every 50 ms, side by side, (for at most 30 s) until status
#     shows another leader and a submit is acknowledged; the later of the two is the round's
#     time. Both are shown, and when raft elected the new leader, from its log. The killed
#     member is then restarted (`shoal cluster up`) and the next round waits until all three
#     coordinators answer as leader or follower in one term.
#
# Percentiles are nearest-rank. Progress goes to stderr and the table to stdout. Timings are
# wall-clock time on loopback, so run it on an otherwise idle machine when the figures matter.
# Needs python3.
set -euo pipefail
# EPOCHREALTIME and awk's number formatting must use '.' as the decimal point.
export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=200
MD=0
CLIENTS=${CLIENTS:-8}
WAIT_RUNS=${WAIT_RUNS:-20}
ROUNDS=${ROUNDS:-5}
SHOAL=$PWD/target/release/shoal
PROGRAM=$PWD/examples/hello-riscv64

die() {
    printf 'cluster.sh: %s\n' "$*" >&2
    exit 1
}

for arg in "$@"; do
    case $arg in
        --md) MD=1 ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        *[!0-9]* | '') die "unknown argument '$arg' (see --help)" ;;
        *) N=$arg ;;
    esac
done
((N > 0)) || die "N must be at least 1"
((CLIENTS > 0 && WAIT_RUNS > 0 && ROUNDS > 0)) || die "CLIENTS, WAIT_RUNS and ROUNDS must be at least 1"
command -v python3 >/dev/null || die "python3 not found"
[[ -x $PROGRAM ]] || die "$PROGRAM not found"

cargo build --release --quiet

SCRATCH=$(mktemp -d)
CLUSTER=$SCRATCH/cluster
export SHOAL SHOAL_CLUSTER=$CLUSTER PROGRAM

# cleanup: stops the cluster and removes the directory. `cluster down` stops what the pid files
# name; a member still running after it (its pid file lost) is killed by pid, and only when its
# command line names this cluster's directory.
cleanup() {
    local status=$? pids=() pid file
    trap - EXIT INT TERM
    if [[ -d $CLUSTER/run ]]; then
        for file in "$CLUSTER"/run/*.pid; do
            [[ -f $file ]] && pids+=("$(<"$file")")
        done
        printf 'cluster.sh: stopping the cluster\n' >&2
        timeout 60 "$SHOAL" cluster down --dir "$CLUSTER" >/dev/null 2>&1 ||
            printf 'cluster.sh: shoal cluster down failed\n' >&2
        for pid in "${pids[@]}"; do
            if [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] &&
                tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$CLUSTER/"; then
                kill -KILL "$pid" 2>/dev/null || true
            fi
        done
    fi
    rm -rf "$SCRATCH"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The measurements, in Python for its monotonic clock, JSON and timeouts on every child. Each
# command prints its figures on one line, space-separated; any failure exits non-zero with a
# message.
cat >"$SCRATCH/measure.py" <<'EOF'
import datetime, json, math, os, select, signal, statistics, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

SHOAL, CLUSTER, PROGRAM = os.environ["SHOAL"], os.environ["SHOAL_CLUSTER"], os.environ["PROGRAM"]


def fail(message):
    print(f"cluster.sh: {message}", file=sys.stderr)
    sys.exit(1)


def shoal(*args, timeout=30.0):
    """Runs shoal with ARGS; a CompletedProcess, or None when it ran past TIMEOUT (it is killed)."""
    try:
        return subprocess.run([SHOAL, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=max(timeout, 0.5))
    except subprocess.TimeoutExpired:
        return None


def status(timeout=30.0):
    """`cluster status --json` (it exits 1 when no leader answers, still printing the JSON)."""
    run = shoal("cluster", "status", "--dir", CLUSTER, "--json", timeout=timeout)
    try:
        return json.loads(run.stdout) if run else None
    except json.JSONDecodeError:
        return None


def coordinators(st):
    return [m for m in st["members"] if m["kind"] == "coordinator"]


def leader(st):
    leaders = [m for m in coordinators(st) if m["role"] == "leader"] if st else []
    return max(leaders, key=lambda m: m["term"] or 0) if leaders else None


def rank(values, p):
    """The nearest-rank P-th percentile."""
    values = sorted(values)
    return values[max(math.ceil(p / 100 * len(values)), 1) - 1]


def submit_once(timeout=60.0):
    """One `shoal submit` without --wait: the guest id, or an error message."""
    run = shoal("submit", PROGRAM, timeout=timeout)
    if run is None:
        return None, f"submit took longer than {timeout:.0f} s"
    if run.returncode != 0 or not run.stdout.strip().isdigit():
        return None, f"submit exited {run.returncode}: {run.stderr.strip()}"
    return int(run.stdout), None


def cmd_ready(want_nodes):
    """The cluster is up: a leader, three coordinators answering, WANT_NODES live nodes."""
    st = status()
    if st is None or leader(st) is None:
        fail(f"no leader after `cluster up`: {st}")
    roles = [m["role"] for m in st["members"]]
    if len(coordinators(st)) != 3 or roles.count("live") != int(want_nodes):
        fail(f"expected 3 coordinators and {want_nodes} live nodes, got roles {roles}")


def cmd_submit(n, clients, ids_file):
    """N submits from CLIENTS concurrent client processes; prints the wall time in seconds."""
    start = time.monotonic()
    with ThreadPoolExecutor(int(clients)) as pool:
        results = list(pool.map(lambda _: submit_once(), range(int(n))))
    wall = time.monotonic() - start
    errors = [e for _, e in results if e]
    if errors:
        fail(f"{len(errors)} of {n} submits failed; the first: {errors[0]}")
    if len({i for i, _ in results}) != int(n):
        fail(f"{n} submits acknowledged fewer distinct guest ids")
    with open(ids_file, "w") as f:
        f.writelines(f"{i}\n" for i, _ in results)
    print(f"{wall:.3f}")


def cmd_settle(ids_file, limit_s):
    """Polls `ps --json` until none of the guests in IDS_FILE is pending, assigned or running
    (for at most LIMIT_S). Prints the time waited, the guests that exited 0, those unfinished,
    and p50/p99 of submit-to-running and submit-to-finished in milliseconds."""
    ids = {int(line) for line in open(ids_file)}
    start = time.monotonic()
    deadline = start + float(limit_s)
    while True:
        run = shoal("ps", "--json", timeout=deadline - time.monotonic())
        guests = {g["id"]: g for g in json.loads(run.stdout)} if run and run.returncode == 0 else {}
        ours = [guests[i] for i in ids if i in guests]
        unfinished = len(ids) - sum(g["state"] not in ("pending", "assigned", "running") for g in ours)
        if (ours and unfinished == 0) or time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    waited = time.monotonic() - start
    if not ours:
        fail("`shoal ps --json` lists none of the submitted guests")
    exited0 = sum(g["state"] == "exited" and g["exit_code"] == 0 for g in ours)
    placed = [g["started_ms"] - g["submitted_ms"] for g in ours if g["started_ms"] is not None]
    done = [g["finished_ms"] - g["submitted_ms"] for g in ours if g["finished_ms"] is not None]
    if not placed or not done:
        fail(f"no guest has started_ms and finished_ms; states: {sorted({g['state'] for g in ours})}")
    print(f"{waited:.1f} {exited0} {unfinished} {rank(placed, 50)} {rank(placed, 99)} "
          f"{rank(done, 50)} {rank(done, 99)} {len(placed)} {len(done)}")


def cmd_first_byte(runs, expected_file):
    """RUNS sequential `submit --wait`, each timed to the first byte of its stdout; each must
    exit 0 and print EXPECTED_FILE's contents. Prints the median and p90 in milliseconds."""
    expected = open(expected_file, "rb").read()
    times = []
    for i in range(int(runs)):
        start = time.monotonic()
        child = subprocess.Popen([SHOAL, "submit", "--wait", PROGRAM], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([child.stdout], [], [], 30)
            if not ready:
                fail(f"submit --wait run {i + 1} printed nothing in 30 s")
            first = os.read(child.stdout.fileno(), 1)
            elapsed = time.monotonic() - start
            rest, err = child.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            fail(f"submit --wait run {i + 1} took longer than 30 s")
        finally:
            child.kill()
            child.wait()
        if child.returncode != 0 or first + rest != expected:
            fail(f"submit --wait run {i + 1} exited {child.returncode} with output "
                 f"{(first + rest)[:200]!r}: {err.decode(errors='replace').strip()}")
        times.append(elapsed * 1e3)
    print(f"{statistics.median(times):.1f} {rank(times, 90):.1f}")


def elected_at(name, term):
    """When the log of coordinator NAME says it became the leader in TERM (Unix seconds)."""
    try:
        for line in open(os.path.join(CLUSTER, "run", f"{name}.log"), errors="replace"):
            if f"became the leader in term {term}" in line and line.endswith(f"term {term}\n"):
                stamp = line.split()[0].rstrip("Z")[:26]
                return datetime.datetime.fromisoformat(stamp).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
    except (OSError, ValueError):
        pass
    return None


def settled(st):
    """Every coordinator answers as leader or follower, all in the leader's term."""
    chief = leader(st)
    return chief is not None and all(
        m["role"] in ("leader", "follower") and m["term"] == chief["term"] for m in coordinators(st))


def wait_settled(what):
    """Polls status every 50 ms (for at most 30 s) until settled; the last status."""
    deadline = time.monotonic() + 30
    while not settled(st := status(timeout=deadline - time.monotonic())):
        if time.monotonic() >= deadline:
            fail(f"{what}: the coordinators did not all answer within 30 s: {st}")
        time.sleep(0.05)
    return st


def cmd_failover(rounds):
    """ROUNDS leader failovers. After the kill, one thread polls status until it shows another
    leader and one polls submit until a submit is acknowledged, each every 50 ms for at most
    30 s. Prints per round, in seconds from the kill: recovery (both seen), status showing the
    new leader, the first acknowledged submit, and the election by the new leader's log ("-"
    when the log does not say)."""
    for r in range(1, int(rounds) + 1):
        old = leader(wait_settled(f"failover round {r}"))
        if not isinstance(old["pid"], int) or old["pid"] <= 0:
            fail(f"failover round {r}: no pid for the leader {old['name']}")
        print(f"cluster.sh: failover round {r}/{rounds}: killing the leader {old['name']} "
              f"(pid {old['pid']}, term {old['term']})", file=sys.stderr)
        killed_at = time.time()
        start = time.monotonic()
        os.kill(old["pid"], signal.SIGKILL)
        deadline = start + 30
        seen = {}

        def poll(key, attempt):
            while time.monotonic() < deadline:
                found = attempt()
                if found is not None:
                    seen[key] = (time.monotonic() - start, found)
                    return
                time.sleep(0.05)

        def new_leader():
            new = leader(status(timeout=deadline - time.monotonic()))
            return new if new is not None and new["name"] != old["name"] else None

        def acknowledged():
            guest, _ = submit_once(timeout=deadline - time.monotonic())
            return guest

        with ThreadPoolExecutor(2) as pool:
            pool.submit(poll, "leader", new_leader)
            pool.submit(poll, "submit", acknowledged)
        if "leader" not in seen or "submit" not in seen:
            fail(f"failover round {r}: within 30 s of the kill, status showed a new leader: "
                 f"{'leader' in seen}, a submit was acknowledged: {'submit' in seen}")
        shown, new = seen["leader"]
        acked = seen["submit"][0]
        elected = elected_at(new["name"], new["term"])
        elected = f"{elected - killed_at:.3f}" if elected else "-"
        print(f"{max(shown, acked):.3f} {shown:.3f} {acked:.3f} {elected}", flush=True)
        restart = shoal("cluster", "up", "--dir", CLUSTER, timeout=60)
        if restart is None or restart.returncode != 0:
            fail(f"failover round {r}: `cluster up` did not restart {old['name']}: "
                 f"{restart.stderr.strip() if restart else 'timed out'}")
    wait_settled("after the failovers")


# Ctrl-C reaches the shoal children too; exit at once rather than wait for them.
signal.signal(signal.SIGINT, lambda *_: os._exit(130))
globals()[f"cmd_{sys.argv[1].replace('-', '_')}"](*sys.argv[2:])
EOF
measure() { python3 "$SCRATCH/measure.py" "$@"; }

stats() { # numbers on stdin, one a line: "median, max" formatted with %.2f
    sort -g | awk '{ v[NR] = $1 } END { printf "%.2f s, max %.2f s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2, v[NR] }'
}

# --- The cluster ------------------------------------------------------------------------------
printf 'cluster.sh: starting 3 coordinators and 2 nodes in %s\n' "$CLUSTER" >&2
timeout 120 "$SHOAL" cluster up --dir "$CLUSTER" --coordinators 3 --nodes 2 >&2 ||
    die "the cluster did not come up (logs were in $CLUSTER/run)"
measure ready 2
# The expected output, and one submit that uploads the program, so that the throughput section
# measures submits of a program the cluster already holds.
"$SHOAL" run "$PROGRAM" >"$SCRATCH/expected" || die "shoal run $PROGRAM failed"
timeout 60 "$SHOAL" submit --wait "$PROGRAM" >/dev/null || die "the first submit --wait failed"

# --- Submit throughput and placement latency --------------------------------------------------
printf 'cluster.sh: %d submits from %d clients\n' "$N" "$CLIENTS" >&2
wall=$(measure submit "$N" "$CLIENTS" "$SCRATCH/ids")
printf 'cluster.sh: waiting (at most 60 s) for the guests to end\n' >&2
settle=$(measure settle "$SCRATCH/ids" 60)
read -r settle_s exited0 unfinished place50 place99 done50 done99 nplaced ndone <<<"$settle"

# --- Submit --wait to first output ------------------------------------------------------------
printf 'cluster.sh: %d sequential submit --wait\n' "$WAIT_RUNS" >&2
first=$(measure first-byte "$WAIT_RUNS" "$SCRATCH/expected")
read -r first50 first90 <<<"$first"

# --- Leader failover --------------------------------------------------------------------------
failover=$(measure failover "$ROUNDS")
[[ $(wc -l <<<"$failover") == "$ROUNDS" ]] || die "failover: expected $ROUNDS rounds, got: $failover"

# --- Report -----------------------------------------------------------------------------------
row() {
    if ((MD)); then
        printf '| %s | %s |\n' "$1" "$2"
    else
        printf '%-58s %s\n' "$1" "$2"
    fi
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo
echo "shoal $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) CPUs (${cpu:-unknown CPU}), $(uname -sr)"
echo "local cluster: 3 coordinators, 2 nodes on loopback; guest examples/hello-riscv64"
echo
if ((MD)); then printf '| measure | result |\n|---|---|\n'; fi
row "$N submits, $CLIENTS clients: wall time, acknowledged/s" \
    "$(awk -v t="$wall" -v n="$N" 'BEGIN { printf "%.2f s, %.0f guests/s", t, n / t }')"
ended="all ended within $settle_s s of the last acknowledgement"
((unfinished == 0)) || ended="$unfinished still pending, assigned or running after $settle_s s"
row "guests that exited 0" "$exited0 of $N ($ended)"
row "submit -> running (started - submitted): p50, p99" "$place50 ms, $place99 ms (of $nplaced)"
row "submit -> ended (finished - submitted): p50, p99" "$done50 ms, $done99 ms (of $ndone)"
row "submit --wait -> first output byte ($WAIT_RUNS runs): median, p90" "$first50 ms, $first90 ms"
row "failover: kill -9 leader -> new leader + submit acked" "$(cut -d' ' -f1 <<<"$failover" | stats)"
row "  rounds" "$(cut -d' ' -f1 <<<"$failover" | awk '{ printf "%s%.2f", (NR > 1 ? ", " : ""), $1 } END { print " s" }')"
row "  kill -9 -> status shows the new leader" "$(cut -d' ' -f2 <<<"$failover" | stats)"
row "  kill -9 -> a submit acknowledged" "$(cut -d' ' -f3 <<<"$failover" | stats)"
if ! cut -d' ' -f4 <<<"$failover" | grep -q -- -; then
    row "  kill -9 -> new leader elected (by its log)" "$(cut -d' ' -f4 <<<"$failover" | stats)"
fi
