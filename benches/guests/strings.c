/* malloc and string churn: build, format, hash and free many small strings. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 600000;
    uint64_t h = 0;
    char *keep[64] = {0};
    for (int i = 0; i < n; i++) {
        char buf[64];
        int len = snprintf(buf, sizeof buf, "item-%d-%x", i, i * 2654435761u);
        char *s = malloc((size_t)len + 1 + (size_t)(i % 97));
        memcpy(s, buf, (size_t)len + 1);
        for (char *p = s; *p; p++) h = h * 31 + (unsigned char)*p;
        if (strstr(s, "-7")) h ^= (uint64_t)strlen(s);
        free(keep[i % 64]);
        keep[i % 64] = s;
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    printf("%llx\n", (unsigned long long)h);
    return 0;
}
