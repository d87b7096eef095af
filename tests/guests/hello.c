/* Prints argc/argv, one chosen environment variable, and exits with the code given as the
 * first argument (0 when absent). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv, char **envp)
{
    printf("hello from riscv64\n");
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=\"%s\" len=%zu\n", i, argv[i], strlen(argv[i]));
    if (argv[argc] != NULL)
        printf("argv not NULL-terminated\n");

    const char *greeting = getenv("SHOAL_GREETING");
    printf("SHOAL_GREETING=%s\n", greeting ? greeting : "(unset)");
    int seen = 0;
    for (char **e = envp; *e; e++)
        if (strncmp(*e, "SHOAL_GREETING=", 15) == 0)
            seen++;
    printf("envp entries named SHOAL_GREETING: %d\n", seen);
    printf("envp == environ: %s\n", envp == environ ? "yes" : "no");

    int code = argc > 1 ? atoi(argv[1]) : 0;
    printf("exiting with %d\n", code);
    return code;
}
