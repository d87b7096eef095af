/* Threads: four workers mix disjoint ranges of integers in chunks; each chunk's result is added
 * to a shared total under a mutex and counted with an atomic, then the workers are joined. The
 * sum is commutative, so the output does not depend on scheduling. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4
#define CHUNK 4096

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t total; /* guarded by lock */
static atomic_ulong chunks;

struct range {
    uint64_t first, count;
};

/* splitmix64's finalizer. */
static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void *worker(void *arg) {
    const struct range *r = arg;
    for (uint64_t start = r->first; start < r->first + r->count; start += CHUNK) {
        uint64_t end = start + CHUNK < r->first + r->count ? start + CHUNK : r->first + r->count;
        uint64_t local = 0;
        for (uint64_t i = start; i < end; i++)
            local += mix(i) >> 32;
        pthread_mutex_lock(&lock);
        total += local;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&chunks, 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], 0, 10) : 600000000;
    pthread_t threads[THREADS];
    struct range ranges[THREADS];
    for (int t = 0; t < THREADS; t++) {
        ranges[t].first = n / THREADS * (uint64_t)t;
        ranges[t].count = t == THREADS - 1 ? n - ranges[t].first : n / THREADS;
        if (pthread_create(&threads[t], NULL, worker, &ranges[t]) != 0) {
            fputs("pthread_create failed\n", stderr);
            return 1;
        }
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    printf("%016llx %lu\n", (unsigned long long)total, atomic_load(&chunks));
    return 0;
}
