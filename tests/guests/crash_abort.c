/* Calls abort(): killed by SIGABRT (status 134). Output before it must be flushed. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    printf("about to abort\n");
    fflush(stdout);
    abort();
}
