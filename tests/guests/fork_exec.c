/* Processes: fork and waitpid statuses, children killed by signals, pipes in both directions,
 * dup2 of a pipe onto stdout, EPIPE and SIGPIPE, vfork + _exit, inherited descriptors and their
 * close-on-exec flag, wait4 with WNOHANG, ECHILD, SIGCHLD through sigwaitinfo and through a
 * handler, and execve's error paths. Successful re-execution lives in exec_self.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENOEXEC: return "ENOEXEC";
    case ECHILD: return "ECHILD";
    case EPIPE: return "EPIPE";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    default: return "other";
    }
}

static void describe(const char *what, int status)
{
    if (WIFEXITED(status))
        printf("%s: exited %d\n", what, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("%s: killed by signal %d\n", what, WTERMSIG(status));
    else
        printf("%s: other status\n", what);
}

static int wait_for(pid_t pid)
{
    int status = -1;
    pid_t r;
    do
        r = waitpid(pid, &status, 0);
    while (r == -1 && errno == EINTR);
    if (r != pid)
        printf("waitpid returned unexpected value\n");
    return status;
}

static void exit_statuses(void)
{
    static const int codes[] = {0, 1, 42, 255, 256 + 3};
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(codes[i]);
        char what[64];
        snprintf(what, sizeof what, "child _exit(%d)", codes[i]);
        describe(what, wait_for(pid));
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        printf("child: getppid matches parent: %d, own pid differs: %d\n", getppid() == parent,
               getpid() != parent);
        exit(0);
    }
    describe("child exit()", wait_for(pid));
}

static void signalled(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        kill(getpid(), SIGKILL);
        _exit(99);
    }
    describe("child kill(self, SIGKILL)", wait_for(pid));
    pid = fork();
    if (pid == 0) {
        signal(SIGABRT, SIG_DFL);
        abort();
    }
    describe("child abort()", wait_for(pid));
    pid = fork();
    if (pid == 0) {
        volatile int *p = (volatile int *)8;
        __asm__ volatile("" : "+r"(p));
        *p = 1;
        _exit(98);
    }
    describe("child wild write", wait_for(pid));

    int pfd[2];
    pipe(pfd);
    pid = fork();
    if (pid == 0) {
        char c;
        close(pfd[1]);
        read(pfd[0], &c, 1); /* blocks until killed */
        _exit(97);
    }
    close(pfd[0]);
    kill(pid, SIGTERM);
    describe("child blocked in read, sent SIGTERM", wait_for(pid));
    close(pfd[1]);

    /* A child writing into a pipe whose read end is closed dies of SIGPIPE. */
    pipe(pfd);
    close(pfd[0]);
    pid = fork();
    if (pid == 0) {
        write(pfd[1], "x", 1);
        _exit(96);
    }
    describe("child writing to a reader-less pipe", wait_for(pid));
    signal(SIGPIPE, SIG_IGN);
    ssize_t w = write(pfd[1], "x", 1);
    printf("parent with SIGPIPE ignored: write=%zd errno=%s\n", w, errname(errno));
    signal(SIGPIPE, SIG_DFL);
    close(pfd[1]);
}

static void pipes(void)
{
    int down[2], up[2];
    pipe(down);
    pipe(up);
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        char buf[64];
        ssize_t n, total = 0;
        while ((n = read(down[0], buf, sizeof buf)) > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (buf[i] >= 'a' && buf[i] <= 'z')
                    buf[i] -= 32;
            write(up[1], buf, (size_t)n);
            total += n;
        }
        _exit(total == 10 ? 0 : 1);
    }
    close(down[0]);
    close(up[1]);
    write(down[1], "hello", 5);
    write(down[1], "world", 5);
    close(down[1]);
    char got[32] = {0};
    ssize_t n, total = 0;
    while ((n = read(up[0], got + total, sizeof got - 1 - (size_t)total)) > 0)
        total += n;
    close(up[0]);
    printf("pipe round trip: read %zd bytes \"%s\"\n", total, got);
    describe("pipe child", wait_for(pid));

    int out[2];
    pipe(out);
    pid = fork();
    if (pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        close(out[1]);
        printf("written to stdout after dup2\n");
        fflush(stdout);
        _exit(0);
    }
    close(out[1]);
    char buf[128] = {0};
    total = 0;
    while ((n = read(out[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    close(out[0]);
    printf("captured child stdout: %s", buf);
    describe("dup2 child", wait_for(pid));
}

static void inherited(void)
{
    int keep = open("/dev/null", O_WRONLY);
    int cloexec = open("/dev/null", O_WRONLY | O_CLOEXEC);
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        int ok = fcntl(keep, F_GETFD) == 0 && fcntl(cloexec, F_GETFD) == FD_CLOEXEC &&
                 write(keep, "x", 1) == 1;
        char msg = ok ? 'Y' : 'N';
        write(p[1], &msg, 1);
        _exit(0);
    }
    close(p[1]);
    char msg = '?';
    read(p[0], &msg, 1);
    close(p[0]);
    wait_for(pid);
    printf("fork inherits fds and FD_CLOEXEC flags: %c\n", msg);
    close(keep);
    close(cloexec);

    char path[] = "./fork_exec_offset_XXXXXX";
    int shared = mkstemp(path);
    char zeros[200] = {0};
    write(shared, zeros, sizeof zeros);
    lseek(shared, 0, SEEK_SET);
    unlink(path);
    pid = fork();
    if (pid == 0) {
        char b[100];
        read(shared, b, sizeof b);
        _exit(0);
    }
    wait_for(pid);
    printf("file offset shared with child after it read 100: %lld\n", (long long)lseek(shared, 0, SEEK_CUR));
    close(shared);
}

static void vforked(void)
{
    pid_t pid = vfork();
    if (pid == 0)
        _exit(7);
    describe("vfork child _exit(7)", wait_for(pid));
}

static void nohang(void)
{
    int p[2];
    pipe(p);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        close(p[1]);
        ssize_t n = read(p[0], &c, 1);
        _exit(n == 1 ? c - '0' : 100);
    }
    close(p[0]);
    int status = 0;
    struct rusage ru;
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    printf("wait4 WNOHANG on running child: %d\n", (int)r);
    write(p[1], "5", 1);
    close(p[1]);
    r = wait4(pid, &status, 0, &ru);
    printf("wait4 blocking: pid matches=%d\n", r == pid);
    describe("wait4 child", status);
    errno = 0;
    r = waitpid(-1, &status, 0);
    printf("waitpid with no children: %d %s\n", (int)r, errname(errno));
    r = waitpid(-1, &status, WNOHANG);
    printf("waitpid WNOHANG with no children: %d %s\n", (int)r, errname(errno));
}

static volatile sig_atomic_t chld_hits, chld_code, chld_status;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    chld_hits++;
    chld_code = si->si_code;
    chld_status = si->si_status;
}

static void sigchld(void)
{
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t pid = fork();
    if (pid == 0)
        _exit(3);
    siginfo_t si;
    int sig = sigwaitinfo(&set, &si);
    printf("sigwaitinfo SIGCHLD: sig ok=%d code=%s status=%d pid ok=%d\n", sig == SIGCHLD,
           si.si_code == CLD_EXITED ? "CLD_EXITED" : "?", si.si_status, si.si_pid == pid);
    wait_for(pid);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_chld;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGCHLD, &sa, NULL);
    pid = fork();
    if (pid == 0) {
        kill(getpid(), SIGKILL);
        _exit(0);
    }
    wait_for(pid);
    printf("SIGCHLD while blocked: hits=%d\n", chld_hits);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("SIGCHLD after unblock: hits=%d code=%s status=%d\n", chld_hits,
           chld_code == CLD_KILLED ? "CLD_KILLED" : "?", chld_status);
    signal(SIGCHLD, SIG_DFL);
}

static void exec_errors(void)
{
    char *argv[] = {"x", NULL};
    char *envp[] = {NULL};
    errno = 0;
    execve("/nonexistent/program", argv, envp);
    printf("execve missing file: %s\n", errname(errno));
    errno = 0;
    execve("/", argv, envp);
    printf("execve directory: %s\n", errname(errno));

    char path[] = "./fork_exec_tmp_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        printf("mkstemp failed\n");
        return;
    }
    write(fd, "not a program\n", 14);
    close(fd);
    errno = 0;
    execve(path, argv, envp);
    printf("execve non-executable file: %s\n", errname(errno));
    chmod(path, 0755);
    errno = 0;
    execve(path, argv, envp);
    printf("execve executable garbage: %s\n", errname(errno));
    unlink(path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    exit_statuses();
    signalled();
    pipes();
    inherited();
    vforked();
    nohang();
    sigchld();
    exec_errors();
    printf("done\n");
    return 0;
}
