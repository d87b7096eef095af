/*
 * A freestanding RISC-V Linux program: no libc, raw system calls only, so the binary is a few
 * kilobytes and can live in the repository. It prints a greeting, its arguments, and the primes
 * below 100, then exits with the number of arguments it was given.
 *
 * Rebuild with examples/build.sh (needs riscv64-linux-gnu-gcc).
 */
typedef unsigned long u64;

static long sys3(long n, long a, long b, long c) {
    register long a0 __asm__("a0") = a;
    register long a1 __asm__("a1") = b;
    register long a2 __asm__("a2") = c;
    register long a7 __asm__("a7") = n;
    __asm__ volatile("ecall" : "+r"(a0) : "r"(a1), "r"(a2), "r"(a7) : "memory");
    return a0;
}

static u64 len(const char *s) {
    u64 n = 0;
    while (s[n]) n++;
    return n;
}

static void put(const char *s) { sys3(64, 1, (long)s, (long)len(s)); }

static void put_num(u64 v) {
    char buf[24];
    int i = 23;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(buf + i);
}

void main_c(u64 *sp) {
    u64 argc = sp[0];
    char **argv = (char **)(sp + 1);
    put("Hello from a RISC-V guest running under shoal!\n");
    for (u64 i = 1; i < argc; i++) {
        put("  argv[");
        put_num(i);
        put("] = ");
        put(argv[i]);
        put("\n");
    }
    put("primes below 100:");
    for (u64 n = 2; n < 100; n++) {
        int prime = 1;
        for (u64 d = 2; d * d <= n; d++)
            if (n % d == 0) prime = 0;
        if (prime) {
            put(" ");
            put_num(n);
        }
    }
    put("\n");
    sys3(93, (long)(argc - 1), 0, 0);
}

__asm__(".globl _start\n"
        "_start:\n"
        "  mv a0, sp\n"
        "  call main_c\n");
