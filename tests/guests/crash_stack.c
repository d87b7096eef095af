/* Unbounded recursion overflows the 8 MiB stack: the guest dies of SIGSEGV (status 139). The
 * recursion is bounded by a limit far beyond any stack, read at run time so the compiler cannot
 * prove it infinite. */
#include <stdio.h>
#include <stdlib.h>

static long depth(volatile char *prev, long n, long limit) {
    volatile char frame[512];
    frame[0] = (char)n;
    frame[511] = prev ? prev[0] : 0;
    if (n >= limit) return frame[511];
    return depth(frame, n + 1, limit) + frame[511];
}

int main(int argc, char **argv) {
    long limit = argc > 1 ? atol(argv[1]) : 1L << 40;
    printf("recursing until the stack overflows\n");
    fflush(stdout);
    return (int)depth(0, 0, limit);
}
