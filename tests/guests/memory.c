/* Address-space calls: brk/sbrk, anonymous, file-backed and MAP_FIXED mappings (SIGBUS past the
 * end of the file), munmap holes,
 * mprotect with SIGSEGV caught through siglongjmp, PROT_NONE, mremap grow/move/shrink, madvise
 * DONTNEED, argument errors, ENOMEM for an impossible size, EFAULT from system calls given bad
 * pointers, and misaligned integer and FP accesses. Only sizes, contents and results are
 * printed, never addresses. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096UL

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOMEM: return "ENOMEM";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    default: return "other";
    }
}

static sigjmp_buf jump;
static volatile sig_atomic_t fault_code, fault_sig;
static volatile uintptr_t fault_addr;

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_sig = sig;
    fault_code = si->si_code;
    fault_addr = (uintptr_t)si->si_addr;
    siglongjmp(jump, 1);
}

/* Tries one access; prints whether it faulted, the si_code, and whether si_addr matched. */
static void probe(const char *label, volatile char *p, int write)
{
    if (sigsetjmp(jump, 1) == 0) {
        if (write)
            *p = 42;
        else
            (void)*p;
        printf("%-40s ok, value %d\n", label, *p);
    } else if (fault_sig == SIGBUS) {
        printf("%-40s SIGBUS %s addr matches=%d\n", label, fault_code == BUS_ADRERR ? "BUS_ADRERR" : "other",
               fault_addr == (uintptr_t)p);
    } else {
        printf("%-40s SIGSEGV %s addr matches=%d\n", label,
               fault_code == SEGV_MAPERR ? "SEGV_MAPERR"
               : fault_code == SEGV_ACCERR ? "SEGV_ACCERR" : "other",
               fault_addr == (uintptr_t)p);
    }
}

static void heap(void)
{
    /* Only differences between breaks are printed: where the break starts, and whether libc
     * has moved it already, depends on the linkage. Nothing that may allocate (printf) runs
     * between the sbrk calls. */
    char *prev = sbrk(10 * PAGE);
    char *now = sbrk(0);
    memset(prev, 0xab, 10 * PAGE);
    unsigned char last = (unsigned char)prev[10 * PAGE - 1];
    sbrk(-(intptr_t)(5 * PAGE));
    char *shrunk = sbrk(0);
    printf("sbrk(10 pages): break grew by %ld\n", (long)(now - prev));
    printf("new heap writable, last byte 0x%02x\n", last);
    printf("after shrink by 5 pages break delta %ld\n", (long)(shrunk - prev));
    uintptr_t cur = (uintptr_t)syscall(SYS_brk, 0);
    uintptr_t grown = (uintptr_t)syscall(SYS_brk, cur + 1024 * 1024);
    printf("raw brk grow by 1 MiB: %d\n", grown == cur + 1024 * 1024);
    ((volatile char *)cur)[1024 * 1024 - 1] = 1;
    uintptr_t failed = (uintptr_t)syscall(SYS_brk, (uintptr_t)1 << 50);
    printf("raw brk to absurd address returns current break: %d\n", failed == grown);
    syscall(SYS_brk, cur);
    void *big = malloc(64 * 1024 * 1024);
    memset(big, 1, 64 * 1024 * 1024);
    printf("malloc 64 MiB and touch: ok=%d\n", big != NULL);
    free(big);
}

static void anonymous(void)
{
    size_t len = 16 * PAGE;
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int zero = 1;
    for (size_t i = 0; i < len; i++)
        zero &= p[i] == 0;
    printf("anonymous mmap zeroed=%d page aligned=%d\n", zero, ((uintptr_t)p % PAGE) == 0);
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)(i * 7);
    unsigned long sum = 0;
    for (size_t i = 0; i < len; i++)
        sum += p[i];
    printf("pattern sum %lu\n", sum);

    printf("madvise DONTNEED: %d\n", madvise(p + PAGE, PAGE, MADV_DONTNEED));
    printf("page after DONTNEED reads zero=%d, neighbour kept=%d\n", p[PAGE] == 0 && p[2 * PAGE - 1] == 0,
           p[2 * PAGE] == (unsigned char)(2 * PAGE * 7));

    printf("munmap middle page: %d\n", munmap(p + 4 * PAGE, PAGE));
    probe("read unmapped hole", (volatile char *)p + 4 * PAGE, 0);
    probe("read page after hole", (volatile char *)p + 5 * PAGE, 0);

    printf("mprotect read-only: %d\n", mprotect(p, PAGE, PROT_READ));
    probe("write read-only page", (volatile char *)p + 100, 1);
    probe("read read-only page", (volatile char *)p + 100, 0);
    mprotect(p, PAGE, PROT_NONE);
    probe("read PROT_NONE page", (volatile char *)p + 8, 0);
    mprotect(p, PAGE, PROT_READ | PROT_WRITE);
    probe("write after restoring RW", (volatile char *)p + 100, 1);
    printf("mprotect unaligned: %d %s\n", mprotect(p + 1, PAGE, PROT_READ), errname(errno));

    /* MAP_FIXED replaces part of an existing mapping. */
    unsigned char *q = mmap(p + 8 * PAGE, PAGE, PROT_READ | PROT_WRITE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    printf("MAP_FIXED at requested address: %d, replaced contents zero=%d, neighbour kept=%d\n",
           q == p + 8 * PAGE, q[0] == 0, p[9 * PAGE] == (unsigned char)(9 * PAGE * 7));
    /* MAP_FIXED_NOREPLACE is not checked: qemu-riscv64 7.2 ignores it (maps elsewhere) where
     * Linux fails with EEXIST. */
    munmap(p, len);

    /* mremap: grow (possibly moving), contents preserved, then shrink. */
    char *r = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memcpy(r, "mremap-data", 12);
    r[2 * PAGE - 1] = 'z';
    errno = 0;
    char *g = mremap(r, 2 * PAGE, 64 * PAGE, MREMAP_MAYMOVE);
    printf("mremap grow MAYMOVE: ok=%d data=%s tail=%c new tail zero=%d\n", g != MAP_FAILED, g,
           g[2 * PAGE - 1], g[64 * PAGE - 1] == 0);
    char *s = mremap(g, 64 * PAGE, PAGE, 0);
    printf("mremap shrink in place: same=%d data=%s\n", s == g, s);
    probe("access beyond shrunk mapping", (volatile char *)g + 2 * PAGE, 0);
    char *target = mmap(NULL, 4 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *m = mremap(s, PAGE, 2 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, target + PAGE);
    printf("mremap MREMAP_FIXED move: at target=%d data=%s\n", m == target + PAGE, m);
    probe("old address after move", (volatile char *)s, 0);
    errno = 0;
    printf("mremap without MAYMOVE into occupied space: %s\n",
           mremap(target + PAGE, 2 * PAGE, 3 * PAGE, 0) == MAP_FAILED ? errname(errno) : "ok");
    munmap(target, 4 * PAGE);
}

static void file_backed(void)
{
    char path[] = "./memory_map_XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    char content[2 * PAGE];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (char)('a' + i % 26);
    write(fd, content, sizeof content);
    char *ro = mmap(NULL, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("file MAP_PRIVATE matches file=%d\n", memcmp(ro, content, sizeof content) == 0);
    probe("write PROT_READ file mapping", (volatile char *)ro, 1);
    char *off = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
    printf("file mapping at offset one page: first byte %c\n", off[0]);
    errno = 0;
    printf("mmap unaligned offset: %s\n",
           mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 100) == MAP_FAILED ? errname(errno) : "ok");
    char *priv = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    priv[0] = 'P';
    char first;
    pread(fd, &first, 1, 0);
    printf("MAP_PRIVATE write stays private: file byte %c\n", first);
    char *shared = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    shared[1] = 'S';
    msync(shared, PAGE, MS_SYNC);
    char second;
    pread(fd, &second, 1, 1);
    printf("MAP_SHARED write reaches file: file byte %c, private copy sees %c\n", second, priv[1]);
    pwrite(fd, "W", 1, 2);
    printf("pwrite visible through MAP_SHARED: %c\n", shared[2]);
    /* Pages past the end of the file but inside the mapping raise SIGBUS. */
    char *tail = mmap(NULL, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    printf("mapping longer than file ok=%d, last file byte %c\n", tail != MAP_FAILED,
           tail[2 * PAGE - 1]);
    probe("read a page past the end of the file", (volatile char *)tail + 2 * PAGE, 0);
    probe("write a page past the end of the file", (volatile char *)tail + 2 * PAGE + 8, 1);
    munmap(ro, 2 * PAGE);
    munmap(off, PAGE);
    munmap(priv, PAGE);
    munmap(shared, PAGE);
    munmap(tail, 3 * PAGE);
    int rdonly = open("/dev/null", O_RDONLY);
    errno = 0;
    printf("MAP_SHARED PROT_WRITE on O_RDONLY fd: %s\n",
           mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, rdonly, 0) == MAP_FAILED
               ? errname(errno) : "ok");
    close(rdonly);
    close(fd);
}

static void errors(void)
{
    errno = 0;
    printf("mmap length 0: %s\n",
           mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED
               ? errname(errno) : "ok");
    errno = 0;
    printf("mmap bad fd: %s\n",
           mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED ? errname(errno) : "ok");
    errno = 0;
    printf("mmap neither private nor shared: %s\n",
           mmap(NULL, PAGE, PROT_READ, MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? errname(errno) : "ok");
    errno = 0;
    /* 2^47 bytes exceeds the user address space of Sv39 and Sv48 and the overcommit heuristic
     * under Sv57, so this fails everywhere. */
    printf("mmap 2^47 bytes: %s\n",
           mmap(NULL, (size_t)1 << 47, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                   == MAP_FAILED ? errname(errno) : "mapped");
    errno = 0;
    printf("munmap unaligned: %d %s\n", munmap((void *)(uintptr_t)4097, PAGE), errname(errno));
    char *gone = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, PAGE);
    printf("munmap of an already unmapped range: %d\n", munmap(gone, PAGE));

    errno = 0;
    uintptr_t bad = 1;
    __asm__ volatile("" : "+r"(bad)); /* keep the compiler from diagnosing the constant */
    ssize_t w = write(1, (void *)bad, 10);
    printf("write(1, (void*)1, 10): %zd %s\n", w, errname(errno));
    int fd = open("/dev/zero", O_RDONLY);
    char *ro = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = 0;
    ssize_t r = read(fd, ro, 16);
    printf("read into read-only page: %zd %s\n", r, errname(errno));
    close(fd);
    munmap(ro, PAGE);
    errno = 0;
    int rc = (int)syscall(SYS_getcwd, (void *)8, 100);
    printf("getcwd into bad pointer: %d %s\n", rc, errname(errno));
    errno = 0;
    rc = open((const char *)16, O_RDONLY);
    printf("open with bad path pointer: %d %s\n", rc, errname(errno));
}

static void misaligned(void)
{
    static unsigned char buf[64] __attribute__((aligned(16)));
    for (int i = 0; i < 64; i++)
        buf[i] = (unsigned char)(i * 17 + 3);
    uint64_t d, w, h, wu;
    int64_t ws;
    __asm__ volatile("ld %0, 0(%1)" : "=r"(d) : "r"(buf + 3) : "memory");
    __asm__ volatile("lw %0, 0(%1)" : "=r"(ws) : "r"(buf + 5) : "memory");
    __asm__ volatile("lwu %0, 0(%1)" : "=r"(wu) : "r"(buf + 6) : "memory");
    __asm__ volatile("lh %0, 0(%1)" : "=r"(h) : "r"(buf + 7) : "memory");
    w = (uint64_t)ws;
    printf("misaligned ld  +3 = %016llx\n", (unsigned long long)d);
    printf("misaligned lw  +5 = %016llx\n", (unsigned long long)w);
    printf("misaligned lwu +6 = %016llx\n", (unsigned long long)wu);
    printf("misaligned lh  +7 = %016llx\n", (unsigned long long)h);
    __asm__ volatile("sd %1, 0(%0)" : : "r"(buf + 33), "r"(0x1122334455667788ULL) : "memory");
    __asm__ volatile("sw %1, 0(%0)" : : "r"(buf + 43), "r"(0xaabbccddULL) : "memory");
    __asm__ volatile("sh %1, 0(%0)" : : "r"(buf + 49), "r"(0xeeffULL) : "memory");
    printf("after misaligned stores:");
    for (int i = 32; i < 52; i++)
        printf(" %02x", buf[i]);
    printf("\n");
    double fd;
    uint64_t bits;
    __asm__ volatile("fld %0, 0(%1)" : "=f"(fd) : "r"(buf + 1) : "memory");
    memcpy(&bits, &fd, 8);
    printf("misaligned fld +1 = %016llx\n", (unsigned long long)bits);
    __asm__ volatile("fsd %1, 0(%0)" : : "r"(buf + 55), "f"(fd) : "memory");
    printf("misaligned fsd round trip: %d\n", memcmp(buf + 55, buf + 1, 8) == 0);
    /* A page-crossing misaligned access. */
    char *two = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 8; i++)
        two[PAGE - 4 + i] = (char)(0x10 + i);
    __asm__ volatile("ld %0, 0(%1)" : "=r"(d) : "r"(two + PAGE - 4) : "memory");
    printf("page-crossing ld = %016llx\n", (unsigned long long)d);
    munmap(two, 2 * PAGE);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    heap();
    anonymous();
    file_backed();
    errors();
    misaligned();
    printf("done\n");
    return 0;
}
