/*
 * Tries to reach files outside a confined root (`shoal run --root DIR`). The harness puts a secret
 * file next to DIR (DIR/../secret.txt) and symlinks inside DIR that point out of it. Every attempt
 * prints one line: "blocked" if the secret stayed out of reach, "ESCAPED" otherwise. Run only under
 * shoal --root (qemu has no such mode).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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

int main(void) {
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
    return 0;
}
