/* Startup: the smallest useful static program, for the startup section of the benchmark. */
#include <stdio.h>
int main(void) {
    puts("hello");
    return 0;
}
