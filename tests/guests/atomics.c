/* A extension: LR/SC pairs, every AMO operation at both widths (old value returned, memory
 * updated, 32-bit results sign-extended), and C11 atomics hammered by several threads with a
 * fixed expected total, including sub-word atomics that compile to masked LR/SC loops. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define AMO(insn, type, init, operand)                                                   \
    do {                                                                                 \
        type mem_ = (type)(init);                                                        \
        uint64_t old_;                                                                   \
        __asm__ volatile(insn " %0, %2, %1" : "=r"(old_), "+A"(mem_)                     \
                         : "r"((uint64_t)(operand)) : "memory");                         \
        printf("%-14s init=%016llx op=%016llx old=%016llx mem=%016llx\n", insn,          \
               (unsigned long long)(uint64_t)(type)(init), (unsigned long long)(operand), \
               (unsigned long long)old_, (unsigned long long)(uint64_t)mem_);            \
    } while (0)

static void amo_table(void)
{
    /* 32-bit: memory holds 0x80000001 (negative as int32); results sign-extend. */
    AMO("amoswap.w", uint32_t, 0x80000001u, 0x12345678u);
    AMO("amoadd.w", uint32_t, 0x7fffffffu, 1);
    AMO("amoadd.w.aq", uint32_t, 0xffffffffu, 0xffffffff00000002ull);
    AMO("amoxor.w", uint32_t, 0xf0f0f0f0u, 0xffffffffu);
    AMO("amoand.w.rl", uint32_t, 0x80000001u, 0x0000ffffu);
    AMO("amoor.w.aqrl", uint32_t, 0x80000000u, 0x00000001u);
    AMO("amomin.w", uint32_t, 0x80000001u, 5);
    AMO("amomax.w", uint32_t, 0x80000001u, 5);
    AMO("amominu.w", uint32_t, 0x80000001u, 5);
    AMO("amomaxu.w", uint32_t, 0x80000001u, 5);
    AMO("amomin.w", uint32_t, 3, 0xfffffffffffffffeull); /* operand's low word is -2 */
    AMO("amomaxu.w", uint32_t, 3, 0x00000001fffffffeull);
    AMO("amoswap.d", uint64_t, 0x8000000000000001ull, 0x123456789abcdef0ull);
    AMO("amoadd.d", uint64_t, 0xffffffffffffffffull, 2);
    AMO("amoxor.d", uint64_t, 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull);
    AMO("amoand.d", uint64_t, 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull);
    AMO("amoor.d.aqrl", uint64_t, 0xff00ff00ff00ff00ull, 0x0ff00ff00ff00ff0ull);
    AMO("amomin.d", uint64_t, 0x8000000000000000ull, 1);
    AMO("amomax.d", uint64_t, 0x8000000000000000ull, 1);
    AMO("amominu.d", uint64_t, 0x8000000000000000ull, 1);
    AMO("amomaxu.d", uint64_t, 0x8000000000000000ull, 1);
    AMO("amomin.d.aq", uint64_t, 0xffffffffffffffffull, 0xfffffffffffffffeull);
}

static void lrsc(void)
{
    uint32_t w = 0x80000000u;
    uint64_t d = 41, loaded, fail;
    int64_t lw;
    /* LR/SC may fail spuriously; a retry loop must succeed eventually. */
    unsigned tries = 0;
    do {
        tries++;
        __asm__ volatile("lr.w %0, %2\n\taddi %0, %0, 1\n\tsc.w %1, %0, %2"
                         : "=&r"(lw), "=&r"(fail), "+A"(w) : : "memory");
    } while (fail != 0 && tries < 1000);
    printf("lr.w/sc.w increment: sc=%llu mem=%08x value_in_reg=%016llx\n",
           (unsigned long long)fail, w, (unsigned long long)lw);
    tries = 0;
    do {
        tries++;
        __asm__ volatile("lr.d.aq %0, %2\n\taddi %0, %0, 1\n\tsc.d.rl %1, %0, %2"
                         : "=&r"(loaded), "=&r"(fail), "+A"(d) : : "memory");
    } while (fail != 0 && tries < 1000);
    printf("lr.d/sc.d increment: sc=%llu mem=%llu\n", (unsigned long long)fail,
           (unsigned long long)d);
    /* The successful SC above consumed the reservation, so a lone SC must fail and leave
     * memory untouched. */
    uint64_t before = d;
    __asm__ volatile("sc.d %0, %2, %1" : "=&r"(fail), "+A"(d) : "r"(999ull) : "memory");
    printf("sc.d without reservation: failed=%s mem_unchanged=%s\n", fail ? "yes" : "no",
           d == before ? "yes" : "no");
    /* lr.w sign-extends the loaded word. */
    uint32_t neg = 0xfffffff0u;
    __asm__ volatile("lr.w %0, %1" : "=r"(lw) : "A"(neg) : "memory");
    printf("lr.w of 0xfffffff0 -> %016llx\n", (unsigned long long)lw);
}

#define THREADS 8
#define ITERS 20000

static atomic_ulong counter_add;
static atomic_ulong counter_cas;
static atomic_uint counter_sub = THREADS * ITERS;
static _Atomic uint16_t counter_u16;
static _Atomic uint8_t counter_u8;
static atomic_ulong max_seen;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static unsigned long plain_counter;
static atomic_ulong xor_acc;

static void *hammer(void *arg)
{
    unsigned long id = (unsigned long)arg;
    for (unsigned i = 0; i < ITERS; i++) {
        atomic_fetch_add_explicit(&counter_add, 1, memory_order_relaxed);
        unsigned long cur = atomic_load(&counter_cas);
        while (!atomic_compare_exchange_weak(&counter_cas, &cur, cur + 2))
            ;
        atomic_fetch_sub(&counter_sub, 1);
        atomic_fetch_add(&counter_u16, 1);
        atomic_fetch_add(&counter_u8, 1);
        atomic_fetch_xor(&xor_acc, (id << 20) | i);
        unsigned long v = id * ITERS + i, m = atomic_load(&max_seen);
        while (v > m && !atomic_compare_exchange_weak(&max_seen, &m, v))
            ;
        while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
            ;
        plain_counter++;
        atomic_flag_clear_explicit(&lock, memory_order_release);
    }
    return NULL;
}

static void threaded(void)
{
    pthread_t t[THREADS];
    for (unsigned long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, hammer, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    unsigned long total = (unsigned long)THREADS * ITERS;
    unsigned long want_xor = 0;
    for (unsigned long id = 0; id < THREADS; id++)
        for (unsigned i = 0; i < ITERS; i++)
            want_xor ^= (id << 20) | i;
    printf("threads=%d iters=%d\n", THREADS, ITERS);
    printf("fetch_add total %lu %s\n", atomic_load(&counter_add),
           atomic_load(&counter_add) == total ? "ok" : "WRONG");
    printf("cas total %lu %s\n", atomic_load(&counter_cas),
           atomic_load(&counter_cas) == 2 * total ? "ok" : "WRONG");
    printf("fetch_sub remaining %u %s\n", atomic_load(&counter_sub),
           atomic_load(&counter_sub) == 0 ? "ok" : "WRONG");
    printf("u16 counter %u %s\n", (unsigned)atomic_load(&counter_u16),
           atomic_load(&counter_u16) == (uint16_t)total ? "ok" : "WRONG");
    printf("u8 counter %u %s\n", (unsigned)atomic_load(&counter_u8),
           atomic_load(&counter_u8) == (uint8_t)total ? "ok" : "WRONG");
    printf("xor accumulator %s\n", atomic_load(&xor_acc) == want_xor ? "ok" : "WRONG");
    printf("max seen %lu %s\n", atomic_load(&max_seen),
           atomic_load(&max_seen) == total - 1 ? "ok" : "WRONG");
    printf("spinlock-protected counter %lu %s\n", plain_counter,
           plain_counter == total ? "ok" : "WRONG");
}

int main(void)
{
    printf("-- amo\n");
    amo_table();
    printf("-- lr/sc\n");
    lrsc();
    printf("-- threads\n");
    threaded();
    _Atomic uint64_t x = 5;
    uint64_t expected = 4;
    int ok = atomic_compare_exchange_strong(&x, &expected, 9);
    printf("failed cas returns current: ok=%d expected=%llu x=%llu\n", ok,
           (unsigned long long)expected, (unsigned long long)atomic_load(&x));
    printf("lock-free: 1=%d 2=%d 4=%d 8=%d\n", (int)atomic_is_lock_free(&counter_u8),
           (int)atomic_is_lock_free(&counter_u16), (int)atomic_is_lock_free(&counter_sub),
           (int)atomic_is_lock_free(&counter_add));
    return 0;
}
