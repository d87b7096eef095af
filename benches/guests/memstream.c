/* Memory streaming: STREAM-like copy, scale and add over 8 MiB arrays. */
#include <stdio.h>
#include <stdlib.h>
#define N (1 << 20)
static double a[N], b[N], c[N];
int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 20;
    for (int i = 0; i < N; i++) { a[i] = i; b[i] = 2.0; c[i] = 0; }
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < N; i++) c[i] = a[i];
        for (int i = 0; i < N; i++) b[i] = 3.0 * c[i];
        for (int i = 0; i < N; i++) c[i] = a[i] + b[i];
        for (int i = 0; i < N; i++) a[i] = b[i] + 3.0 * c[i];
    }
    double sum = 0;
    for (int i = 0; i < N; i += 4096) sum += a[i];
    printf("%g\n", sum);
    return 0;
}
