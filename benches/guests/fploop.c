/* Floating-point loop: a Basel-series sum and a small n-body-like update. */
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000000;
    double s = 0, x = 0.5, v = 0.0;
    for (long i = 1; i <= n; i++) {
        s += 1.0 / ((double)i * (double)i);
        double a = -x * 0.001;
        v += a * 0.01;
        x += v * 0.01;
    }
    printf("%.12f %.12f\n", s, x);
    return 0;
}
