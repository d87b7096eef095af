/* pthreads: mutexes (normal, recursive, errorcheck, trylock), condition variables with a
 * bounded queue, barriers, rwlocks, thread-local storage, join return values, detached
 * threads, pthread_once and thread-specific keys. Only deterministic totals are printed. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NTHREADS 16
#define ROUNDS 2000

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case EBUSY: return "EBUSY";
    case EDEADLK: return "EDEADLK";
    case EPERM: return "EPERM";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case EAGAIN: return "EAGAIN";
    default: return "other";
    }
}

/* --- mutex-protected counter and join values --- */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long shared_total;
static __thread unsigned long tls_counter;
static __thread int tls_initialised = 7;

static void *mutex_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    if (tls_initialised != 7)
        return (void *)-1;
    for (int i = 0; i < ROUNDS; i++) {
        tls_counter++;
        pthread_mutex_lock(&mu);
        shared_total += id + 1;
        pthread_mutex_unlock(&mu);
    }
    tls_initialised = 100 + (int)id;
    return (void *)(tls_counter * 1000 + id);
}

static void mutexes(void)
{
    pthread_t t[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, mutex_worker, (void *)i);
    int joins_ok = 0;
    for (uintptr_t i = 0; i < NTHREADS; i++) {
        void *ret;
        pthread_join(t[i], &ret);
        if ((uintptr_t)ret == ROUNDS * 1000 + i)
            joins_ok++;
    }
    unsigned long want = 0;
    for (int i = 0; i < NTHREADS; i++)
        want += (unsigned long)(i + 1) * ROUNDS;
    printf("mutex total %lu %s; join values ok %d/%d; main tls untouched %s\n", shared_total,
           shared_total == want ? "ok" : "WRONG", joins_ok, NTHREADS,
           tls_initialised == 7 && tls_counter == 0 ? "yes" : "no");

    pthread_mutexattr_t a;
    pthread_mutex_t rec, chk;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&rec, &a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ERRORCHECK);
    pthread_mutex_init(&chk, &a);
    pthread_mutexattr_destroy(&a);
    int r1 = pthread_mutex_lock(&rec), r2 = pthread_mutex_lock(&rec),
        r3 = pthread_mutex_trylock(&rec);
    printf("recursive lock x3: %s %s %s\n", errname(r1), errname(r2), errname(r3));
    pthread_mutex_unlock(&rec);
    pthread_mutex_unlock(&rec);
    pthread_mutex_unlock(&rec);
    printf("recursive unlock when free: %s\n", errname(pthread_mutex_unlock(&rec)));
    printf("errorcheck lock: %s\n", errname(pthread_mutex_lock(&chk)));
    printf("errorcheck relock: %s\n", errname(pthread_mutex_lock(&chk)));
    printf("errorcheck unlock: %s\n", errname(pthread_mutex_unlock(&chk)));
    printf("errorcheck unlock again: %s\n", errname(pthread_mutex_unlock(&chk)));
    pthread_mutex_lock(&mu);
    printf("trylock held normal mutex: %s\n", errname(pthread_mutex_trylock(&mu)));
    pthread_mutex_unlock(&mu);
    struct timespec past = {0, 0};
    pthread_mutex_lock(&mu);
    printf("timedlock held mutex with past deadline: %s\n",
           errname(pthread_mutex_timedlock(&mu, &past)));
    pthread_mutex_unlock(&mu);
    pthread_mutex_destroy(&rec);
    pthread_mutex_destroy(&chk);
}

/* --- condition variables: bounded producer/consumer queue --- */
#define QCAP 4
#define ITEMS_PER_PRODUCER 500
#define PRODUCERS 4
#define CONSUMERS 4
static pthread_mutex_t qmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER, not_empty = PTHREAD_COND_INITIALIZER;
static long queue[QCAP];
static int qhead, qlen, producers_left = PRODUCERS;

static void *producer(void *arg)
{
    long base = (long)(uintptr_t)arg * 100000;
    for (long i = 1; i <= ITEMS_PER_PRODUCER; i++) {
        pthread_mutex_lock(&qmu);
        while (qlen == QCAP)
            pthread_cond_wait(&not_full, &qmu);
        queue[(qhead + qlen++) % QCAP] = base + i;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&qmu);
    }
    pthread_mutex_lock(&qmu);
    producers_left--;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&qmu);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    long sum = 0, count = 0;
    for (;;) {
        pthread_mutex_lock(&qmu);
        while (qlen == 0 && producers_left > 0)
            pthread_cond_wait(&not_empty, &qmu);
        if (qlen == 0) {
            pthread_mutex_unlock(&qmu);
            break;
        }
        sum += queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qlen--;
        count++;
        pthread_cond_signal(&not_full);
        pthread_mutex_unlock(&qmu);
    }
    static long total_sum, total_count;
    static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&tmu);
    total_sum += sum;
    total_count += count;
    pthread_mutex_unlock(&tmu);
    return (void *)(uintptr_t)(((uint64_t)total_count << 40) | (uint64_t)total_sum);
}

static void condvars(void)
{
    pthread_t p[PRODUCERS], c[CONSUMERS];
    for (uintptr_t i = 0; i < CONSUMERS; i++)
        pthread_create(&c[i], NULL, consumer, NULL);
    for (uintptr_t i = 0; i < PRODUCERS; i++)
        pthread_create(&p[i], NULL, producer, (void *)(i + 1));
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(p[i], NULL);
    uint64_t last = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        void *r;
        pthread_join(c[i], &r);
        if ((uint64_t)(uintptr_t)r > last)
            last = (uint64_t)(uintptr_t)r;
    }
    long want_sum = 0;
    for (long pr = 1; pr <= PRODUCERS; pr++)
        for (long i = 1; i <= ITEMS_PER_PRODUCER; i++)
            want_sum += pr * 100000 + i;
    long got_count = (long)(last >> 40), got_sum = (long)(last & ((1ull << 40) - 1));
    printf("condvar queue: items %ld sum %ld %s\n", got_count, got_sum,
           got_count == PRODUCERS * ITEMS_PER_PRODUCER && got_sum == want_sum ? "ok" : "WRONG");

    struct timespec past = {1, 0};
    pthread_mutex_lock(&qmu);
    printf("cond_timedwait with past deadline: %s\n",
           errname(pthread_cond_timedwait(&not_empty, &qmu, &past)));
    pthread_mutex_unlock(&qmu);
}

/* --- barriers --- */
#define BARRIER_THREADS 16
#define PHASES 50
static pthread_barrier_t bar;
static int phase_counts[PHASES];
static pthread_mutex_t pcmu = PTHREAD_MUTEX_INITIALIZER;
static int serial_total;

static void *barrier_worker(void *arg)
{
    (void)arg;
    for (int ph = 0; ph < PHASES; ph++) {
        pthread_mutex_lock(&pcmu);
        phase_counts[ph]++;
        pthread_mutex_unlock(&pcmu);
        int r = pthread_barrier_wait(&bar);
        if (r == PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&pcmu);
            serial_total++;
            pthread_mutex_unlock(&pcmu);
        } else if (r != 0) {
            return (void *)1;
        }
        /* After the barrier every thread must have finished this phase. */
        pthread_mutex_lock(&pcmu);
        int seen = phase_counts[ph];
        pthread_mutex_unlock(&pcmu);
        if (seen != BARRIER_THREADS)
            return (void *)2;
    }
    return NULL;
}

static void barriers(void)
{
    pthread_barrier_init(&bar, NULL, BARRIER_THREADS);
    pthread_t t[BARRIER_THREADS];
    for (int i = 0; i < BARRIER_THREADS; i++)
        pthread_create(&t[i], NULL, barrier_worker, NULL);
    int bad = 0;
    for (int i = 0; i < BARRIER_THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (r != NULL)
            bad++;
    }
    pthread_barrier_destroy(&bar);
    printf("barrier: %d threads x %d phases, serial returns %d, bad threads %d\n",
           BARRIER_THREADS, PHASES, serial_total, bad);
    printf("barrier_init count 0: %s\n", errname(pthread_barrier_init(&bar, NULL, 0)));
}

/* --- rwlocks --- */
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static long rw_value;
static long rw_torn;

static void *rw_worker(void *arg)
{
    uintptr_t id = (uintptr_t)arg;
    for (int i = 0; i < 500; i++) {
        if (id % 4 == 0) {
            pthread_rwlock_wrlock(&rw);
            rw_value++;
            rw_value++;
            pthread_rwlock_unlock(&rw);
        } else {
            pthread_rwlock_rdlock(&rw);
            if (rw_value % 2 != 0)
                __atomic_fetch_add(&rw_torn, 1, __ATOMIC_RELAXED);
            pthread_rwlock_unlock(&rw);
        }
    }
    return NULL;
}

static void rwlocks(void)
{
    pthread_t t[NTHREADS];
    for (uintptr_t i = 0; i < NTHREADS; i++)
        pthread_create(&t[i], NULL, rw_worker, (void *)i);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    printf("rwlock: value %ld (want %d), torn reads %ld\n", rw_value, NTHREADS / 4 * 1000,
           rw_torn);
    pthread_rwlock_rdlock(&rw);
    printf("rwlock: second rdlock %s, trywrlock while read-held %s\n",
           errname(pthread_rwlock_tryrdlock(&rw)), errname(pthread_rwlock_trywrlock(&rw)));
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_unlock(&rw);
    pthread_rwlock_wrlock(&rw);
    printf("rwlock: tryrdlock while write-held %s\n", errname(pthread_rwlock_tryrdlock(&rw)));
    pthread_rwlock_unlock(&rw);
}

/* --- detached threads, once, keys, semaphores --- */
static sem_t done_sem;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_runs;
static pthread_key_t key;
static int destructor_runs;
static pthread_mutex_t dmu = PTHREAD_MUTEX_INITIALIZER;

static void once_init(void) { once_runs++; }
static void key_destructor(void *v)
{
    pthread_mutex_lock(&dmu);
    destructor_runs += (int)(uintptr_t)v;
    pthread_mutex_unlock(&dmu);
}

static void *detached_worker(void *arg)
{
    pthread_once(&once, once_init);
    pthread_setspecific(key, arg);
    if (pthread_getspecific(key) != arg)
        return NULL;
    sem_post(&done_sem);
    return NULL;
}

static void detached(void)
{
    sem_init(&done_sem, 0, 0);
    pthread_key_create(&key, key_destructor);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int created = 0;
    for (uintptr_t i = 0; i < NTHREADS; i++)
        if (pthread_create(&(pthread_t){0}, &attr, detached_worker, (void *)1) == 0)
            created++;
    pthread_attr_destroy(&attr);
    for (int i = 0; i < created; i++)
        sem_wait(&done_sem);
    /* Destructors run after the worker posts; wait for them without timing assumptions. */
    for (int waits = 0; waits < 20000; waits++) {
        pthread_mutex_lock(&dmu);
        int d = destructor_runs;
        pthread_mutex_unlock(&dmu);
        if (d == created)
            break;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    printf("detached: created %d, posts received %d, once ran %d, key destructors %d\n",
           created, created, once_runs, destructor_runs);
    printf("sem_trywait on empty: %s\n", sem_trywait(&done_sem) == -1 && errno == EAGAIN
                                             ? "EAGAIN" : "unexpected");
    pthread_t self = pthread_self();
    printf("join self: %s\n", errname(pthread_join(self, NULL)));
    pthread_t t;
    pthread_create(&t, NULL, detached_worker, (void *)0);
    pthread_detach(t);
    sem_wait(&done_sem);
    printf("pthread_equal(self,self)=%d\n", pthread_equal(self, pthread_self()) != 0);
}

int main(void)
{
    mutexes();
    condvars();
    barriers();
    rwlocks();
    detached();
    return 0;
}
