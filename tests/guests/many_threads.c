/* Many more threads than host CPUs, all of them blocking: 64 threads pass a token around a ring
 * (mutex + condition variable), meet at a barrier, relay a byte down a chain of pipes (each read
 * waits on an empty pipe), post and wait on semaphores, sleep, and wait for a forked child, while
 * a spinning thread competes for the CPU. Every result is fixed, so the output is too. */
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define N 64
#define ROUNDS 20
#define BARRIER_ROUNDS 30

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_turn = PTHREAD_COND_INITIALIZER;
static int token;       /* whose turn it is */
static long passes;     /* handoffs done */
static long order_ok = 1;

static void *ring(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        pthread_mutex_lock(&ring_lock);
        while (token != me)
            pthread_cond_wait(&ring_turn, &ring_lock);
        if (passes != (long)r * N + me)
            order_ok = 0;
        passes++;
        token = (me + 1) % N;
        pthread_cond_broadcast(&ring_turn);
        pthread_mutex_unlock(&ring_lock);
    }
    return NULL;
}

static pthread_barrier_t barrier;
static long arrivals[BARRIER_ROUNDS];
static long barrier_ok = 1;

static void *meet(void *arg)
{
    (void)arg;
    for (int r = 0; r < BARRIER_ROUNDS; r++) {
        __atomic_fetch_add(&arrivals[r], 1, __ATOMIC_SEQ_CST);
        pthread_barrier_wait(&barrier);
        /* Everyone has arrived at round r before anyone passes it. */
        if (__atomic_load_n(&arrivals[r], __ATOMIC_SEQ_CST) != N)
            barrier_ok = 0;
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static int pipes[N + 1][2];

static void *relay(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned char b;
    for (int i = 0; i < 3; i++) {
        if (read(pipes[me][0], &b, 1) != 1)
            return (void *)1;
        b++;
        if (write(pipes[me + 1][1], &b, 1) != 1)
            return (void *)1;
    }
    return NULL;
}

static sem_t items, slots;
static long consumed_sum;

static void *producer(void *arg)
{
    long base = (long)(intptr_t)arg * 100;
    for (long i = 0; i < 50; i++) {
        sem_wait(&slots);
        __atomic_fetch_add(&consumed_sum, base + i, __ATOMIC_SEQ_CST);
        sem_post(&items);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++)
        sem_wait(&items), sem_post(&slots);
    return NULL;
}

static void *sleeper(void *arg)
{
    int me = (int)(intptr_t)arg;
    struct timespec ts = { 0, (me % 5 + 1) * 1000000L };
    struct timespec before, after;
    clock_gettime(CLOCK_MONOTONIC, &before);
    nanosleep(&ts, NULL);
    clock_gettime(CLOCK_MONOTONIC, &after);
    long ns = (after.tv_sec - before.tv_sec) * 1000000000L + (after.tv_nsec - before.tv_nsec);
    return (void *)(intptr_t)(ns >= ts.tv_nsec);
}

static volatile int stop_spinning;
static void *spinner(void *arg)
{
    (void)arg;
    unsigned long n = 0;
    while (!stop_spinning)
        n++;
    return (void *)(intptr_t)(n > 0);
}

static void run_all(const char *what, void *(*fn)(void *), int count)
{
    pthread_t t[N];
    int failed = 0;
    for (int i = 0; i < count; i++)
        if (pthread_create(&t[i], NULL, fn, (void *)(intptr_t)i) != 0) {
            printf("%s: pthread_create %d failed\n", what, i);
            exit(1);
        }
    for (int i = 0; i < count; i++) {
        void *r;
        pthread_join(t[i], &r);
        if (fn == sleeper ? r == NULL : r != NULL)
            failed++;
    }
    printf("%s: %d threads joined, %d failed\n", what, count, failed);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t spin;
    pthread_create(&spin, NULL, spinner, NULL);

    run_all("ring", ring, N);
    printf("ring: %ld handoffs, in order: %s\n", passes, order_ok ? "yes" : "no");

    pthread_barrier_init(&barrier, NULL, N);
    run_all("barrier", meet, N);
    printf("barrier: %d rounds, all arrived first: %s\n", BARRIER_ROUNDS, barrier_ok ? "yes" : "no");

    for (int i = 0; i <= N; i++)
        if (pipe(pipes[i]) != 0)
            return 1;
    pthread_t chain[N];
    for (int i = 0; i < N; i++)
        pthread_create(&chain[i], NULL, relay, (void *)(intptr_t)i);
    unsigned char out[3] = { 0 };
    for (int i = 0; i < 3; i++) {
        unsigned char b = (unsigned char)(i * 10);
        write(pipes[0][1], &b, 1);
        read(pipes[N][0], &out[i], 1);
    }
    for (int i = 0; i < N; i++)
        pthread_join(chain[i], NULL);
    printf("pipes: relayed through %d threads: %d %d %d\n", N, out[0], out[1], out[2]);

    sem_init(&items, 0, 0);
    sem_init(&slots, 0, 4);
    pthread_t ps[N / 2], cs[N / 2];
    for (int i = 0; i < N / 2; i++) {
        pthread_create(&ps[i], NULL, producer, (void *)(intptr_t)i);
        pthread_create(&cs[i], NULL, consumer, NULL);
    }
    for (int i = 0; i < N / 2; i++) {
        pthread_join(ps[i], NULL);
        pthread_join(cs[i], NULL);
    }
    printf("semaphores: sum %ld\n", consumed_sum);

    run_all("sleep", sleeper, N);

    pid_t child = fork();
    if (child == 0) {
        usleep(20000);
        _exit(9);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child: exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

    stop_spinning = 1;
    void *r;
    pthread_join(spin, &r);
    printf("spinner: ran: %s\n", r ? "yes" : "no");
    return 0;
}
