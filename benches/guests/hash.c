/* Bit manipulation: XXH64 (rotations, 64-bit multiplies, shifts and xors) over a 64 KiB buffer,
 * many rounds, each seeded with the previous round's hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUF_SIZE (64 * 1024)

static const uint64_t P1 = 11400714785074694791ULL, P2 = 14029467366897019727ULL,
                      P3 = 1609587929392839161ULL, P4 = 9650029242287828579ULL;

static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t read64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v; /* little-endian on both riscv64 and x86-64 */
}

static uint64_t round64(uint64_t acc, uint64_t input) { return rotl(acc + input * P2, 31) * P1; }

static uint64_t merge64(uint64_t acc, uint64_t v) { return (acc ^ round64(0, v)) * P1 + P4; }

/* XXH64 of a buffer whose length is a multiple of 32. */
static uint64_t xxh64(const unsigned char *p, size_t len, uint64_t seed) {
    uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
    for (size_t i = 0; i < len; i += 32) {
        v1 = round64(v1, read64(p + i));
        v2 = round64(v2, read64(p + i + 8));
        v3 = round64(v3, read64(p + i + 16));
        v4 = round64(v4, read64(p + i + 24));
    }
    uint64_t h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge64(merge64(merge64(merge64(h, v1), v2), v3), v4) + len;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h;
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 80000;
    static unsigned char buf[BUF_SIZE];
    uint64_t s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < BUF_SIZE; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17; /* xorshift64 */
        buf[i] = (unsigned char)s;
    }
    uint64_t h = 0, popcount = 0;
    for (int r = 0; r < rounds; r++) {
        h = xxh64(buf, BUF_SIZE, h);
        popcount += (uint64_t)__builtin_popcountll(h);
        buf[h % BUF_SIZE] ^= (unsigned char)(h >> 56); /* every round hashes different data */
    }
    printf("%016llx %llu\n", (unsigned long long)h, (unsigned long long)popcount);
    return 0;
}
