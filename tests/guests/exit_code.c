/* Exits with status 42 after flushing a line through stdio's exit path. */
#include <stdio.h>
#include <stdlib.h>

static void on_exit_hook(void)
{
    printf("atexit handler ran\n");
}

int main(void)
{
    atexit(on_exit_hook);
    printf("calling exit(42)\n");
    exit(42);
}
