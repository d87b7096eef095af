/* Writes through a wild pointer with no handler installed: killed by SIGSEGV (status 139). */
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    printf("about to write through a wild pointer\n");
    fflush(stdout);
    uintptr_t addr = 0x10;
    /* Hide the constant from the optimiser so it emits a real store. */
    __asm__ volatile("" : "+r"(addr));
    volatile uint64_t *wild = (volatile uint64_t *)addr;
    *wild = 0x5eed;
    printf("still alive after wild write\n");
    return 0;
}
