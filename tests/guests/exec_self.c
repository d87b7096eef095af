/* Successful execve: the program re-executes itself (argv[0] as a path) through execve after
 * fork, vfork + execve, posix_spawn with file actions, and a final execve that replaces the
 * process and supplies the exit status. The new image checks what must survive exec (argv,
 * envp, descriptors without FD_CLOEXEC, ignored signals, the signal mask) and what must not
 * (descriptors with FD_CLOEXEC, installed handlers).
 *
 * Under qemu-riscv64 this only works where the host kernel can run riscv64 binaries itself
 * (binfmt_misc), which is why the conformance harness runs it only there. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEEP_FD 20
#define CLOEXEC_FD 21

static void on_usr1(int sig) { (void)sig; }

static int child_main(int argc, char **argv)
{
    printf("  image argc=%d", argc);
    for (int i = 1; i < argc; i++)
        printf(" [%s]", argv[i]);
    const char *v = getenv("EXEC_SELF_VAR");
    printf(" EXEC_SELF_VAR=%s\n", v ? v : "(unset)");
    errno = 0;
    int keep = fcntl(KEEP_FD, F_GETFD);
    int cloexec_gone = fcntl(CLOEXEC_FD, F_GETFD) == -1 && errno == EBADF;
    printf("  kept fd flags=%d, cloexec fd closed=%d\n", keep, cloexec_gone);
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("  SIGUSR1 handler reset to default=%d\n", sa.sa_handler == SIG_DFL);
    sigaction(SIGUSR2, NULL, &sa);
    printf("  SIGUSR2 still ignored=%d\n", sa.sa_handler == SIG_IGN);
    sigset_t mask;
    sigprocmask(SIG_SETMASK, NULL, &mask);
    printf("  SIGTERM still blocked=%d\n", sigismember(&mask, SIGTERM));
    if (keep >= 0)
        write(KEEP_FD, "k", 1);
    fflush(stdout);
    return argc > 2 ? atoi(argv[2]) : 0;
}

static void describe(const char *what, int status)
{
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d\n", what, WTERMSIG(status));
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "image") == 0)
        return child_main(argc, argv);

    /* State the new image inspects. */
    int p[2];
    pipe(p);
    dup2(p[1], KEEP_FD);
    dup3(p[1], CLOEXEC_FD, O_CLOEXEC);
    close(p[1]);
    signal(SIGUSR1, on_usr1);
    signal(SIGUSR2, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, NULL);
    char *envp[] = {"EXEC_SELF_VAR=from-execve", NULL};

    printf("fork + execve:\n");
    pid_t pid = fork();
    if (pid == 0) {
        char *args[] = {argv[0], "image", "11", NULL};
        execve(argv[0], args, envp);
        printf("  execve failed: errno=%d\n", errno);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    describe("fork + execve child", status);

    printf("vfork + execve:\n");
    pid = vfork();
    if (pid == 0) {
        char *args[] = {argv[0], "image", "12", "extra arg", NULL};
        execve(argv[0], args, envp);
        _exit(127);
    }
    waitpid(pid, &status, 0);
    describe("vfork + execve child", status);

    printf("posix_spawn with stdout redirected to a pipe:\n");
    int out[2];
    pipe(out);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *sargs[] = {argv[0], "image", "13", NULL};
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, sargs, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    char buf[1024] = {0};
    ssize_t n, total = 0;
    while ((n = read(out[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    close(out[0]);
    printf("posix_spawn rc=%d, captured %zd bytes:\n%s", rc, total, buf);
    waitpid(pid, &status, 0);
    describe("posix_spawn child", status);

    char marks[8] = {0};
    int flags = fcntl(p[0], F_GETFL);
    fcntl(p[0], F_SETFL, flags | O_NONBLOCK);
    n = read(p[0], marks, sizeof marks - 1);
    printf("kept fd written by images: %s\n", n > 0 ? marks : "(nothing)");

    printf("final execve replacing this process:\n");
    char *args[] = {argv[0], "image", "33", NULL};
    execve(argv[0], args, envp);
    printf("execve failed: errno=%d\n", errno);
    return 1;
}
