/* Executes an illegal instruction with no handler installed: killed by SIGILL (status 132). */
#include <stdio.h>

int main(void)
{
    printf("about to execute an illegal instruction\n");
    fflush(stdout);
    /* The all-zero 32-bit word is defined to be illegal in every RISC-V profile. */
    __asm__ volatile(".4byte 0x00000000");
    printf("still alive after illegal instruction\n");
    return 0;
}
