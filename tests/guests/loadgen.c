/* A small guest for load tests and their benchmarks: `loadgen exit N` exits with N, `loadgen
 * sleep MS` sleeps, `loadgen spin` never ends, `loadgen work N` does N rounds of integer work
 * and prints a checksum, `loadgen ticks N MS` sleeps MS milliseconds N times (an interactive
 * guest), `loadgen idle MS` touches a little memory and sleeps (for memory per idle guest),
 * `loadgen yield N` calls sched_yield N times (for the cost of switching guests), `loadgen
 * alloc MB` allocates and touches MB MiB a MiB at a time and exits 1 with a message when malloc
 * fails (a guest that outgrows its memory limit). */
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "exit";
    long n = argc > 2 ? atol(argv[2]) : 0;
    if (strcmp(what, "exit") == 0)
        return (int)n;
    if (strcmp(what, "sleep") == 0) {
        sleep_ms(n);
        return 0;
    }
    if (strcmp(what, "spin") == 0) {
        for (volatile unsigned long i = 0;; i++)
            ;
    }
    if (strcmp(what, "work") == 0) {
        uint64_t h = 1469598103934665603ull;
        for (long i = 0; i < n * 1000; i++)
            h = (h ^ (uint64_t)i) * 1099511628211ull;
        printf("%016llx\n", (unsigned long long)h);
        return 0;
    }
    if (strcmp(what, "ticks") == 0) {
        long ms = argc > 3 ? atol(argv[3]) : 1;
        for (long i = 0; i < n; i++)
            sleep_ms(ms);
        return 0;
    }
    if (strcmp(what, "idle") == 0) {
        static char touched[64 * 1024];
        memset(touched, 1, sizeof touched);
        sleep_ms(n);
        return touched[n % sizeof touched] - 1;
    }
    if (strcmp(what, "yield") == 0) {
        for (long i = 0; i < n; i++)
            sched_yield();
        return 0;
    }
    if (strcmp(what, "alloc") == 0) {
        for (long i = 0; i < n; i++) {
            char *p = malloc(1 << 20);
            if (p == NULL) {
                fprintf(stderr, "loadgen: out of memory after %ld MiB\n", i);
                return 1;
            }
            memset(p, 1, 1 << 20);
        }
        return 0;
    }
    fprintf(stderr, "usage: loadgen exit N | sleep MS | spin | work N | ticks N MS | idle MS | yield N | alloc MB\n");
    return 2;
}
