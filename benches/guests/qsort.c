/* Indirect calls: qsort with a comparator over pseudo-random integers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
static int cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000000;
    uint32_t *v = malloc(sizeof *v * (size_t)n);
    uint32_t s = 12345;
    for (int i = 0; i < n; i++) { s = s * 1664525u + 1013904223u; v[i] = s; }
    qsort(v, (size_t)n, sizeof *v, cmp);
    printf("%u %u %u\n", v[0], v[n / 2], v[n - 1]);
    free(v);
    return 0;
}
