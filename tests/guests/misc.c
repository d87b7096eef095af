/* Assorted system calls whose results can be checked deterministically: uname's stable fields,
 * getrandom lengths and flags, monotonic clocks, nanosleep, process ids, resource limits,
 * sched_yield and affinity, prctl names, time, sysinfo, and a few errno cases. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    default: return "other";
    }
}

static long long ts_ns(const struct timespec *t)
{
    return (long long)t->tv_sec * 1000000000LL + t->tv_nsec;
}

int main(void)
{
    struct utsname u;
    int rc = uname(&u);
    printf("uname: rc=%d sysname=%s machine=%s release non-empty=%d\n", rc, u.sysname, u.machine,
           u.release[0] != 0);

    unsigned char buf[300];
    ssize_t n = getrandom(buf, 16, 0);
    printf("getrandom 16: %zd\n", n);
    n = getrandom(buf, 256, GRND_NONBLOCK);
    printf("getrandom 256 NONBLOCK: %zd\n", n);
    n = getrandom(buf, 0, 0);
    printf("getrandom 0: %zd\n", n);
    errno = 0;
    n = getrandom(buf, 16, 0x1000);
    printf("getrandom bad flags: %zd %s\n", n, errname(errno));
    unsigned char a[32], b[32];
    getrandom(a, sizeof a, 0);
    getrandom(b, sizeof b, 0);
    printf("two 32-byte draws differ: %d\n", memcmp(a, b, sizeof a) != 0);

    struct timespec t0, t1, res;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int nondecreasing = 1;
    for (int i = 0; i < 1000; i++) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        if (ts_ns(&t1) < ts_ns(&t0))
            nondecreasing = 0;
        t0 = t1;
    }
    printf("CLOCK_MONOTONIC non-decreasing over 1000 reads: %d\n", nondecreasing);
    printf("clock_getres MONOTONIC: rc=%d positive=%d\n", clock_getres(CLOCK_MONOTONIC, &res),
           ts_ns(&res) > 0);
    struct timespec rt;
    printf("CLOCK_REALTIME after 2020: %d\n",
           clock_gettime(CLOCK_REALTIME, &rt) == 0 && rt.tv_sec > 1577836800);
    struct timespec cpu;
    printf("CLOCK_PROCESS_CPUTIME_ID: rc=%d\n", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu));
    printf("CLOCK_THREAD_CPUTIME_ID: rc=%d\n", clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu));
    errno = 0;
    rc = clock_gettime((clockid_t)1234, &cpu);
    printf("clock_gettime bad clock: %d %s\n", rc, errname(rc ? errno : 0));

    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct timespec req = {0, 20 * 1000 * 1000}, rem = {9, 9};
    rc = nanosleep(&req, &rem);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("nanosleep 20ms: rc=%d slept at least 20ms=%d\n", rc, ts_ns(&t1) - ts_ns(&t0) >= 20000000);
    req.tv_nsec = 1000000000;
    errno = 0;
    printf("nanosleep tv_nsec=1e9: %d %s\n", nanosleep(&req, NULL), errname(errno));
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 5000000;
    if (abs.tv_nsec >= 1000000000) {
        abs.tv_sec++;
        abs.tv_nsec -= 1000000000;
    }
    rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("clock_nanosleep ABSTIME: rc=%d reached deadline=%d\n", rc, ts_ns(&t1) >= ts_ns(&abs));
    struct timeval tv;
    printf("gettimeofday: rc=%d after 2020=%d\n", gettimeofday(&tv, NULL), tv.tv_sec > 1577836800);
    time_t now = time(NULL);
    printf("time non-zero: %d\n", now > 0);

    pid_t pid = getpid();
    /* Process-group and session ids are not checked: inside a PID namespace whose session
     * leader lives outside it they read as 0. */
    printf("getpid>0=%d getppid>0=%d gettid==getpid=%d getpgid(0)==getpgrp=%d\n", pid > 0,
           getppid() > 0, (pid_t)syscall(SYS_gettid) == pid, getpgid(0) == getpgrp());
    printf("uid/gid consistent: getuid==geteuid=%d getgid==getegid=%d\n", getuid() == geteuid(),
           getgid() == getegid());
    errno = 0;
    printf("kill of nonexistent pid (INT32_MAX): %d %s\n", kill(0x7fffffff, 0), errname(errno));

    struct rlimit rl, rl2;
    printf("getrlimit STACK: rc=%d cur<=max=%d\n", getrlimit(RLIMIT_STACK, &rl),
           rl.rlim_max == RLIM_INFINITY || rl.rlim_cur <= rl.rlim_max);
    getrlimit(RLIMIT_NOFILE, &rl);
    rl2 = rl;
    rl2.rlim_cur = rl.rlim_cur > 100 ? 100 : rl.rlim_cur;
    printf("setrlimit NOFILE cur=100: rc=%d\n", setrlimit(RLIMIT_NOFILE, &rl2));
    getrlimit(RLIMIT_NOFILE, &rl2);
    printf("getrlimit NOFILE reads back: %d\n", rl2.rlim_cur == (rl.rlim_cur > 100 ? 100 : rl.rlim_cur));
    rl2.rlim_cur = rl2.rlim_max == RLIM_INFINITY ? rl2.rlim_cur : rl2.rlim_max + 1;
    errno = 0;
    if (rl2.rlim_max != RLIM_INFINITY)
        printf("setrlimit cur > max: %d %s\n", setrlimit(RLIMIT_NOFILE, &rl2), errname(errno));
    else
        printf("setrlimit cur > max: -1 EINVAL\n");
    setrlimit(RLIMIT_NOFILE, &rl);
    struct rlimit cpu_lim;
    printf("prlimit64 self CPU query: rc=%d\n", prlimit(0, RLIMIT_CPU, NULL, &cpu_lim));
    errno = 0;
    printf("getrlimit bad resource: %d %s\n", getrlimit((__rlimit_resource_t)999, &rl),
           errname(errno));
    struct rusage ru;
    printf("getrusage SELF: rc=%d\n", getrusage(RUSAGE_SELF, &ru));

    printf("sched_yield: %d\n", sched_yield());
    cpu_set_t set;
    CPU_ZERO(&set);
    rc = sched_getaffinity(0, sizeof set, &set);
    printf("sched_getaffinity: rc=%d at least one cpu=%d\n", rc, CPU_COUNT(&set) >= 1);
    printf("sched_getscheduler: %s\n", sched_getscheduler(0) == SCHED_OTHER ? "SCHED_OTHER" : "other");

    char name[32] = {0};
    printf("prctl SET_NAME: %d\n", prctl(PR_SET_NAME, "shoal-guest", 0, 0, 0));
    printf("prctl GET_NAME: %d \"%s\"\n", prctl(PR_GET_NAME, name, 0, 0, 0), name);
    prctl(PR_SET_NAME, "a-name-longer-than-sixteen-bytes", 0, 0, 0);
    prctl(PR_GET_NAME, name, 0, 0, 0);
    printf("long name truncated to 15: \"%s\"\n", name);
    int dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
    printf("prctl GET_DUMPABLE is 0 or 1: %d\n", dumpable == 0 || dumpable == 1);
    errno = 0;
    printf("prctl bad option: %d %s\n", prctl(0x7fff0000, 0, 0, 0, 0), errname(errno));

    struct sysinfo si;
    rc = sysinfo(&si);
    printf("sysinfo: rc=%d totalram>0=%d mem_unit>0=%d procs>0=%d\n", rc, si.totalram > 0,
           si.mem_unit > 0, si.procs > 0);
    long pg = sysconf(_SC_PAGESIZE);
    printf("sysconf PAGESIZE: %ld\n", pg);
    printf("sysconf NPROCESSORS_ONLN >= 1: %d\n", sysconf(_SC_NPROCESSORS_ONLN) >= 1);
    errno = 0;
    long r = syscall(999999);
    printf("unknown syscall number: %ld %s\n", r, errname(errno));
    return 0;
}
