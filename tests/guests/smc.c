/* Self-modifying code: RISC-V machine code written at run time into mapped pages, made visible
 * to instruction fetch with __builtin___clear_cache (riscv_flush_icache) and fence.i, called
 * through function pointers, then rewritten and called again. Every version is called many times,
 * so under shoal's default engine it is compiled by the JIT tier before it is rewritten.
 *
 * Cases:
 *   mprotect   written RW, switched to RX, rewritten after switching back to RW
 *   rwx        an RWX page rewritten in place, several versions in turn, only the flush between
 *   remap      the RWX page unmapped and a new one mapped at the same address (MAP_FIXED) with
 *              a different function
 *   loop       a generated loop summing 1..n whose body holds the rewritten instruction
 *   selfpatch  a generated loop that patches an instruction of its own body on every iteration,
 *              with a fence.i after the store
 *   thread     a second thread spins in generated code until a flag is set, while this one
 *              rewrites the code after the loop and flushes, then sets the flag:
 *              riscv_flush_icache reaches every thread of the process, so the spinner must
 *              run the new code when it leaves the loop
 *
 * Every line prints the value the architecture requires next to the value computed, so a wrong
 * result is plain in the output. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef long (*fn)(long);

/* Calls per version: well above the JIT's hot threshold (200 block runs). */
#define CALLS 2000

enum { ZERO = 0, RA = 1, A0 = 10, A1 = 11, A2 = 12, A3 = 13, A4 = 14 };

/* Encoders for the few instruction formats used (RISC-V unprivileged ISA, chapter 2). */
static uint32_t i_type(int32_t imm, int rs1, int funct3, int rd, uint32_t opcode) {
    return ((uint32_t)imm & 0xfff) << 20 | (uint32_t)rs1 << 15 | (uint32_t)funct3 << 12 |
           (uint32_t)rd << 7 | opcode;
}
static uint32_t r_type(int funct7, int rs2, int rs1, int funct3, int rd, uint32_t opcode) {
    return (uint32_t)funct7 << 25 | (uint32_t)rs2 << 20 | (uint32_t)rs1 << 15 |
           (uint32_t)funct3 << 12 | (uint32_t)rd << 7 | opcode;
}
static uint32_t s_type(int32_t off, int rs2, int rs1, int funct3) {
    uint32_t imm = (uint32_t)off & 0xfff;
    return (imm >> 5) << 25 | (uint32_t)rs2 << 20 | (uint32_t)rs1 << 15 | (uint32_t)funct3 << 12 |
           (imm & 0x1f) << 7 | 0x23;
}
static uint32_t b_type(int32_t off, int rs2, int rs1, int funct3) {
    uint32_t imm = (uint32_t)off & 0x1fff;
    return ((imm >> 12) & 1) << 31 | ((imm >> 5) & 0x3f) << 25 | (uint32_t)rs2 << 20 |
           (uint32_t)rs1 << 15 | (uint32_t)funct3 << 12 | ((imm >> 1) & 0xf) << 8 |
           ((imm >> 11) & 1) << 7 | 0x63;
}
static uint32_t u_type(int32_t imm20, int rd, uint32_t opcode) {
    return ((uint32_t)imm20 & 0xfffff) << 12 | (uint32_t)rd << 7 | opcode;
}

static uint32_t addi(int rd, int rs1, int32_t imm) { return i_type(imm, rs1, 0, rd, 0x13); }
static uint32_t andi(int rd, int rs1, int32_t imm) { return i_type(imm, rs1, 7, rd, 0x13); }
static uint32_t slli(int rd, int rs1, int shamt) { return i_type(shamt, rs1, 1, rd, 0x13); }
static uint32_t addiw(int rd, int rs1, int32_t imm) { return i_type(imm, rs1, 0, rd, 0x1b); }
static uint32_t add(int rd, int rs1, int rs2) { return r_type(0, rs2, rs1, 0, rd, 0x33); }
static uint32_t or_(int rd, int rs1, int rs2) { return r_type(0, rs2, rs1, 6, rd, 0x33); }
static uint32_t sw(int rs2, int rs1, int32_t off) { return s_type(off, rs2, rs1, 2); }
static uint32_t blt(int rs1, int rs2, int32_t off) { return b_type(off, rs2, rs1, 4); }
static uint32_t lui(int rd, int32_t imm20) { return u_type(imm20, rd, 0x37); }
static uint32_t auipc(int rd, int32_t imm20) { return u_type(imm20, rd, 0x17); }
static uint32_t ret(void) { return i_type(0, RA, 0, ZERO, 0x67); } /* jalr zero, 0(ra) */
static const uint32_t FENCE_I = 0x0000100f;

/* `li rd, k` for any 32-bit k, always two words: lui rd, hi; addiw rd, rd, lo. */
static uint32_t *emit_li(uint32_t *at, int rd, int32_t k) {
    int32_t hi = (int32_t)(((int64_t)k + 0x800) >> 12);
    int32_t lo = (int32_t)((int64_t)k - ((int64_t)hi << 12));
    *at++ = lui(rd, hi);
    *at++ = addiw(rd, rd, lo);
    return at;
}

/* Makes `len` bytes of new code at `start` visible to instruction fetch, both ways a riscv64
 * program can: libgcc's __clear_cache (the riscv_flush_icache system call) and fence.i. */
static void flush(void *start, size_t len) {
    __builtin___clear_cache((char *)start, (char *)start + len);
    __asm__ volatile(".word 0x0000100f" ::: "memory"); /* fence.i */
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void *map(void *at, int prot) {
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | (at ? MAP_FIXED : 0);
    void *page = mmap(at, page_size(), prot, flags, -1, 0);
    if (page == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return page;
}

static void protect(void *page, int prot) {
    if (mprotect(page, page_size(), prot) != 0) {
        perror("mprotect");
        exit(1);
    }
}

/* Writes `long f(long) { return k; }` at `code`. */
static void write_constant(uint32_t *code, int32_t k) {
    uint32_t *end = emit_li(code, A0, k);
    *end = ret();
}

/* Calls f(arg) `calls` times through a volatile pointer and reports the result, which every call
 * must agree on. */
static void report(const char *what, fn f, long arg, int calls, long expected) {
    fn volatile target = f;
    long first = target(arg);
    int agreeing = 1;
    for (int i = 1; i < calls; i++)
        agreeing += target(arg) == first;
    printf("%-34s = %ld, %d of %d calls agree (expected %ld)%s\n", what, first, agreeing, calls,
           expected, first == expected && agreeing == calls ? "" : "  <-- WRONG");
}

static void case_mprotect(void) {
    uint32_t *code = map(NULL, PROT_READ | PROT_WRITE);
    write_constant(code, 42);
    protect(code, PROT_READ | PROT_EXEC);
    flush(code, 16);
    report("mprotect: first version", (fn)(void *)code, 0, CALLS, 42);

    protect(code, PROT_READ | PROT_WRITE);
    write_constant(code, -1234567);
    protect(code, PROT_READ | PROT_EXEC);
    flush(code, 16);
    report("mprotect: rewritten", (fn)(void *)code, 0, CALLS, -1234567);
    munmap(code, page_size());
}

/* Returns the RWX page, still mapped, for the remap case. */
static uint32_t *case_rwx(void) {
    static const int32_t versions[] = {7, 99999, -2048, 0x7fffffff, 1 << 20};
    uint32_t *code = map(NULL, PROT_READ | PROT_WRITE | PROT_EXEC);
    for (size_t v = 0; v < sizeof versions / sizeof versions[0]; v++) {
        write_constant(code, versions[v]);
        flush(code, 16);
        char what[64];
        snprintf(what, sizeof what, "rwx: version %zu in place", v);
        report(what, (fn)(void *)code, 0, CALLS, versions[v]);
    }
    return code;
}

static void case_remap(uint32_t *old) {
    if (munmap(old, page_size()) != 0) {
        perror("munmap");
        exit(1);
    }
    uint32_t *code = map(old, PROT_READ | PROT_WRITE | PROT_EXEC);
    printf("remap: new page at the old address: %s\n", code == old ? "yes" : "no");
    /* long f(long x) { return 2 * x + 5; } */
    code[0] = slli(A0, A0, 1);
    code[1] = addi(A0, A0, 5);
    code[2] = ret();
    flush(code, 12);
    report("remap: 2*x+5 at x=20", (fn)(void *)code, 20, CALLS, 45);
    munmap(code, page_size());
}

/* long sum(long n): s = 0; do { s += n; s += step; n -= 1; } while (n > 0); return s;
 * The word at index 2, `addi a1, a1, step`, is the instruction rewritten. */
static void write_sum_loop(uint32_t *code, int32_t step) {
    code[0] = addi(A1, ZERO, 0);  /* s = 0 */
    code[1] = add(A1, A1, A0);    /* loop: s += n */
    code[2] = addi(A1, A1, step); /*       s += step */
    code[3] = addi(A0, A0, -1);   /*       n -= 1 */
    code[4] = blt(ZERO, A0, -12); /*       if 0 < n goto loop */
    code[5] = addi(A0, A1, 0);    /* return s */
    code[6] = ret();
}

static void case_loop(void) {
    enum { N = 1000, LOOP_CALLS = 1000 };
    uint32_t *code = map(NULL, PROT_READ | PROT_WRITE | PROT_EXEC);
    write_sum_loop(code, 0);
    flush(code, 28);
    report("loop: sum 1..1000", (fn)(void *)code, N, LOOP_CALLS, (long)N * (N + 1) / 2);

    code[2] = addi(A1, A1, 3);
    flush(code, 28);
    report("loop: body rewritten, step 3", (fn)(void *)code, N, LOOP_CALLS,
           (long)N * (N + 1) / 2 + 3L * N);

    code[2] = addi(A1, A1, -1);
    flush(code + 2, 4);
    report("loop: body rewritten, step -1", (fn)(void *)code, N, LOOP_CALLS,
           (long)N * (N + 1) / 2 - N);
    munmap(code, page_size());
}

/* long f(long n): s = 0; do { patch the word P to `addi a1, a1, n & 0x7ff`; fence.i;
 * P; n -= 1; } while (n > 0); return s;  So f(n) is the sum of (i & 0x7ff) for i in 1..n. */
static void case_selfpatch(void) {
    uint32_t *code = map(NULL, PROT_READ | PROT_WRITE | PROT_EXEC);
    uint32_t *at = code;
    *at++ = addi(A1, ZERO, 0); /* s = 0 */
    /* a4 = the word `addi a1, a1, 0`, into which the immediate is or-ed */
    at = emit_li(at, A4, (int32_t)addi(A1, A1, 0));
    uint32_t *base = at;
    *at++ = auipc(A2, 0); /* a2 = base */
    uint32_t *loop = at;
    *at++ = andi(A3, A0, 0x7ff); /* loop: a3 = n & 0x7ff */
    *at++ = slli(A3, A3, 20);    /*       shifted into the immediate field */
    *at++ = or_(A3, A3, A4);     /*       a3 = `addi a1, a1, n & 0x7ff` */
    uint32_t *store = at++;      /*       sw a3, P(a2), encoded below once P is known */
    *at++ = FENCE_I;
    uint32_t *patched = at;
    *at++ = addi(A1, A1, 0);  /*       P: the patched word */
    *at++ = addi(A0, A0, -1); /*       n -= 1 */
    *at = blt(ZERO, A0, (int32_t)((char *)loop - (char *)at)); /* if 0 < n goto loop */
    at++;
    *at++ = addi(A0, A1, 0); /* return s */
    *at++ = ret();
    *store = sw(A3, A2, (int32_t)((char *)patched - (char *)base));
    flush(code, (size_t)((char *)at - (char *)code));

    enum { N = 5000 };
    long expected = 0;
    for (long i = 1; i <= N; i++)
        expected += i & 0x7ff;
    report("selfpatch: sum of i & 0x7ff", (fn)(void *)code, N, 3, expected);
    munmap(code, page_size());
}

static volatile long thread_flag;

/* Runs the generated function, which spins until `thread_flag` is set and then returns its
 * constant. It first calls it with a flag already set, so that under a JIT that compiles only
 * code it has seen run, this thread's compiled loop holds the return too. */
static void *spinner(void *code) {
    long (*spin)(volatile long *) = (long (*)(volatile long *))code;
    static volatile long set = 1;
    for (int i = 0; i < CALLS; i++)
        spin(&set);
    return (void *)spin(&thread_flag);
}

/* `long f(volatile long *flag) { while (!*flag) {} return k; }`, the constant last. */
static void write_spin(uint32_t *code, int32_t k) {
    code[0] = i_type(0, A0, 3, A1, 0x03); /* ld a1, 0(a0) */
    code[1] = b_type(-4, ZERO, A1, 0);    /* beqz a1, -4 */
    uint32_t *end = emit_li(code + 2, A0, k);
    *end = ret();
}

static void case_thread(void) {
    uint32_t *code = map(NULL, PROT_READ | PROT_WRITE | PROT_EXEC);
    write_spin(code, 1);
    flush(code, 24);
    pthread_t t;
    if (pthread_create(&t, NULL, spinner, code) != 0) {
        perror("pthread_create");
        exit(1);
    }
    /* Long enough for the spinning loop to be compiled; the loop and the return that follows it
     * are one region, so the spinner never leaves compiled code on its own. */
    usleep(200 * 1000);
    write_spin(code, 2);
    flush(code, 24);
    thread_flag = 1;
    void *seen;
    pthread_join(t, &seen);
    printf("thread: the spinning thread returned version %ld%s\n", (long)seen,
           (long)seen == 2 ? "" : "  <-- WRONG");
    munmap(code, page_size());
}

int main(void) {
    case_mprotect();
    case_remap(case_rwx());
    case_loop();
    case_selfpatch();
    case_thread();
    return 0;
}
