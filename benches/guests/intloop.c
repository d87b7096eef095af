/* Integer loop: an FNV-style hash with rotations over a counter. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 300000000;
    uint64_t h = 1469598103934665603ULL;
    for (long i = 0; i < n; i++) {
        h ^= (uint64_t)i;
        h *= 1099511628211ULL;
        h = (h << 7) | (h >> 57);
    }
    printf("%llx\n", (unsigned long long)h);
    return 0;
}
