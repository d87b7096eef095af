/*
 * Tries to reach files outside a confined root (`shoal run --root DIR`). The harness puts a secret
 * file next to DIR (DIR/../secret.txt) and symlinks inside DIR that point out of it. Every attempt
 * prints one line: "blocked" if the secret stayed out of reach, "ESCAPED" otherwise. The network is
 * out of reach too: argv[1] is a host AF_UNIX socket path and argv[2] a host abstract socket name,
 * both listening; neither may be reached, and no AF_INET/AF_INET6 socket may be made. A socketpair
 * still works (one line "socketpair round trip: ok"). Run only under shoal --root (qemu has no such
 * mode).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int reads_secret(int fd) {
    char buf[64] = {0};
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n > 0 && strstr(buf, "TOP-SECRET") != NULL;
}

static void attempt(const char *what, int escaped) {
    printf("%-40s %s\n", what, escaped ? "ESCAPED" : "blocked");
}

/* Connects an AF_UNIX stream socket to `name` (abstract when `abstract`); 1 if it got through. */
static int unix_connects(const char *name, int abstract) {
    if (name == NULL) return 0;
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    if (s < 0) return 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t n = strlen(name);
    if (n + 2 > sizeof a.sun_path) n = sizeof a.sun_path - 2;
    memcpy(a.sun_path + abstract, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + abstract + n + !abstract);
    int ok = connect(s, (struct sockaddr *)&a, len) == 0;
    close(s);
    return ok;
}

static int makes_socket(int family) {
    int s = socket(family, SOCK_STREAM, 0);
    if (s < 0) return errno != EACCES;
    close(s);
    return 1;
}

int main(int argc, char **argv) {
    attempt("open ../secret.txt", reads_secret(open("../secret.txt", O_RDONLY)));
    attempt("open /../secret.txt", reads_secret(open("/../secret.txt", O_RDONLY)));
    attempt("open ../../../../secret.txt", reads_secret(open("../../../../secret.txt", O_RDONLY)));
    attempt("open via symlink to ..", reads_secret(open("up/secret.txt", O_RDONLY)));
    attempt("open via absolute symlink", reads_secret(open("abs/secret.txt", O_RDONLY)));
    attempt("open via symlink to host /etc", reads_secret(open("etc-link/../secret.txt", O_RDONLY)));

    int d = open("/", O_RDONLY | O_DIRECTORY);
    attempt("openat(rootfd, ..)", reads_secret(openat(d, "../secret.txt", O_RDONLY)));
    close(d);

    for (int i = 0; i < 10; i++) chdir("..");
    attempt("chdir .. x10 then open secret", reads_secret(open("secret.txt", O_RDONLY)));
    char cwd[256];
    attempt("getcwd stays at /", getcwd(cwd, sizeof cwd) == NULL || strcmp(cwd, "/") != 0);

    symlink("/../secret.txt", "made-link");
    attempt("new symlink to /../secret.txt", reads_secret(open("made-link", O_RDONLY)));

    struct stat st;
    attempt("stat ../secret.txt", stat("../secret.txt", &st) == 0);
    attempt("stat via symlink to ..", stat("up/secret.txt", &st) == 0);
    attempt("access via absolute symlink", access("abs/secret.txt", F_OK) == 0);

    int w = open("../planted.txt", O_WRONLY | O_CREAT, 0644);
    if (w >= 0) { write(w, "x", 1); close(w); }
    attempt("create ../planted.txt lands at /", access("/planted.txt", F_OK) != 0);

    struct stat lst;
    attempt("rename into ..", rename("made-link", "../moved-link") == 0 && lstat("/moved-link", &lst) != 0);
    attempt("open /proc/self/cwd/../secret.txt", reads_secret(open("/proc/self/cwd/../secret.txt", O_RDONLY)));

    attempt("socket(AF_INET)", makes_socket(AF_INET));
    attempt("socket(AF_INET6)", makes_socket(AF_INET6));
    attempt("connect to host AF_UNIX path", unix_connects(argc > 1 ? argv[1] : NULL, 0));
    attempt("connect to host abstract socket", unix_connects(argc > 2 ? argv[2] : NULL, 1));
    int b = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un here = {.sun_family = AF_UNIX, .sun_path = "made.sock"};
    attempt("bind AF_UNIX path in the root", bind(b, (struct sockaddr *)&here, sizeof here) == 0 || errno != EACCES);
    close(b);

    int sv[2];
    char buf[4] = {0};
    int pair = socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && write(sv[0], "ok", 2) == 2 && read(sv[1], buf, 3) == 2;
    printf("socketpair round trip: %s\n", pair && strcmp(buf, "ok") == 0 ? "ok" : "FAILED");
    return 0;
}
