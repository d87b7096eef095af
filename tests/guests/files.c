/* File system calls inside a fresh temporary directory (made with mkdtemp under the current
 * directory and removed at the end): I/O and offsets, the stat family (size, mode, type and
 * link count only), directory operations, links, readdir (sorted), fcntl, dup/dup3, access,
 * chdir/getcwd, umask, the common errno cases, and EMFILE under a lowered RLIMIT_NOFILE. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *errname(int e)
{
    switch (e) {
    case 0: return "0";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EBADF: return "EBADF";
    case EMFILE: return "EMFILE";
    case EINVAL: return "EINVAL";
    case ENOTEMPTY: return "ENOTEMPTY";
    case EACCES: return "EACCES";
    case ESPIPE: return "ESPIPE";
    case ELOOP: return "ELOOP";
    case EXDEV: return "EXDEV";
    case EPERM: return "EPERM";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EFAULT: return "EFAULT";
    case ERANGE: return "ERANGE";
    default: return "other";
    }
}

/* Runs an expression returning -1/errno on failure and prints "label: ret errno". */
#define TRY(label, expr)                                                      \
    do {                                                                      \
        errno = 0;                                                            \
        long r_ = (long)(expr);                                               \
        printf("%-44s -> %ld %s\n", label, r_, r_ < 0 ? errname(errno) : ""); \
    } while (0)

static const char *type_name(mode_t m)
{
    if (S_ISREG(m)) return "reg";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "lnk";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISCHR(m)) return "chr";
    return "other";
}

static void show_stat(const char *label, int rc, const struct stat *st)
{
    if (rc != 0) {
        printf("%-44s -> %d %s\n", label, rc, errname(errno));
        return;
    }
    /* A directory's size depends on the file system, so it is not printed. */
    long long size = S_ISDIR(st->st_mode) ? -1 : (long long)st->st_size;
    printf("%-44s -> %s size=%lld perm=%04o nlink=%lu\n", label, type_name(st->st_mode), size,
           (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink);
}

static void io(void)
{
    int fd = open("data", O_RDWR | O_CREAT | O_EXCL, 0644);
    printf("open O_CREAT|O_EXCL ok=%d\n", fd >= 0);
    TRY("open O_CREAT|O_EXCL again", open("data", O_RDWR | O_CREAT | O_EXCL, 0644));
    TRY("write 16", write(fd, "0123456789abcdef", 16));
    TRY("lseek SEEK_CUR", lseek(fd, 0, SEEK_CUR));
    TRY("lseek SEEK_SET 4", lseek(fd, 4, SEEK_SET));
    char buf[64] = {0};
    TRY("read 6", read(fd, buf, 6));
    printf("  read bytes \"%s\"\n", buf);
    TRY("pwrite 3 at 14 (extends)", pwrite(fd, "XYZ", 3, 14));
    TRY("offset unchanged by pwrite", lseek(fd, 0, SEEK_CUR));
    memset(buf, 0, sizeof buf);
    TRY("pread 8 at 10", pread(fd, buf, 8, 10));
    printf("  pread bytes \"%s\"\n", buf);
    TRY("lseek SEEK_END", lseek(fd, 0, SEEK_END));
    TRY("lseek past end +100", lseek(fd, 100, SEEK_END));
    TRY("write 1 at hole end", write(fd, "!", 1));
    struct stat st;
    show_stat("fstat after hole", fstat(fd, &st), &st);
    TRY("pread inside hole", pread(fd, buf, 4, 50));
    printf("  hole reads zeros=%d\n", buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 0);
    TRY("ftruncate 5", ftruncate(fd, 5));
    show_stat("fstat after truncate", fstat(fd, &st), &st);
    TRY("read at offset beyond EOF", read(fd, buf, 10));
    TRY("ftruncate 4096 (grow)", ftruncate(fd, 4096));
    TRY("fsync", fsync(fd));
    TRY("fdatasync", fdatasync(fd));
    TRY("lseek negative", lseek(fd, -1, SEEK_SET));
    TRY("lseek bad whence", lseek(fd, 0, 42));
    TRY("close", close(fd));
    TRY("close again", close(fd));
    TRY("read closed fd", read(fd, buf, 1));
    TRY("write to fd -1", write(-1, "x", 1));
    int p[2];
    pipe(p);
    TRY("lseek on pipe", lseek(p[0], 0, SEEK_SET));
    close(p[0]);
    close(p[1]);
    fd = open("data", O_WRONLY | O_APPEND);
    lseek(fd, 0, SEEK_SET);
    write(fd, "tail", 4);
    show_stat("O_APPEND write goes to end", fstat(fd, &st), &st);
    close(fd);
    fd = open("data", O_RDONLY);
    TRY("write to O_RDONLY fd", write(fd, "x", 1));
    close(fd);
    fd = open("data", O_RDWR | O_TRUNC);
    show_stat("O_TRUNC", fstat(fd, &st), &st);
    close(fd);
}

static void stats(void)
{
    struct stat st;
    mkdir("dir", 0755);
    symlink("data", "link");
    symlink("missing-target", "dangling");
    show_stat("stat data", stat("data", &st), &st);
    show_stat("stat dir", stat("dir", &st), &st);
    show_stat("lstat link", lstat("link", &st), &st);
    show_stat("stat link (follows)", stat("link", &st), &st);
    show_stat("stat dangling", stat("dangling", &st), &st);
    show_stat("lstat dangling", lstat("dangling", &st), &st);
    int dfd = open("dir", O_RDONLY | O_DIRECTORY);
    int f = openat(dfd, "inner", O_CREAT | O_WRONLY, 0600);
    write(f, "12345", 5);
    close(f);
    show_stat("fstatat dir/inner", fstatat(dfd, "inner", &st, 0), &st);
    show_stat("fstatat link NOFOLLOW", fstatat(AT_FDCWD, "link", &st, AT_SYMLINK_NOFOLLOW), &st);
    show_stat("fstatat empty path", fstatat(dfd, "", &st, AT_EMPTY_PATH), &st);
    show_stat("stat /dev/null", stat("/dev/null", &st), &st);
    show_stat("stat missing", stat("nope", &st), &st);
    show_stat("stat data/x (ENOTDIR)", stat("data/x", &st), &st);
    struct statx sx;
    errno = 0;
    int rc = statx(dfd, "inner", 0, STATX_BASIC_STATS, &sx);
    printf("%-44s -> %d size=%llu perm=%04o type=%s nlink=%u mask_has_size=%d\n",
           "statx dir/inner", rc, (unsigned long long)sx.stx_size, sx.stx_mode & 07777,
           type_name(sx.stx_mode), sx.stx_nlink, (sx.stx_mask & STATX_SIZE) != 0);
    TRY("statx missing", statx(AT_FDCWD, "nope", 0, STATX_BASIC_STATS, &sx));
    close(dfd);
    char target[64] = {0};
    TRY("readlink link", readlink("link", target, sizeof target - 1));
    printf("  target \"%s\"\n", target);
    TRY("readlink short buffer", readlink("link", target, 2));
    TRY("readlink regular file", readlink("data", target, sizeof target));
    TRY("symlink over existing", symlink("x", "link"));
}

static void dirs_and_links(void)
{
    struct stat st;
    TRY("mkdir existing", mkdir("dir", 0755));
    TRY("mkdir under file", mkdir("data/sub", 0755));
    TRY("mkdir missing parent", mkdir("a/b", 0755));
    TRY("rmdir non-empty", rmdir("dir"));
    TRY("rmdir file", rmdir("data"));
    TRY("unlink dir", unlink("dir"));
    TRY("open dir for write", open("dir", O_WRONLY));
    TRY("open file O_DIRECTORY", open("data", O_RDONLY | O_DIRECTORY));
    TRY("open missing", open("nope", O_RDONLY));
    TRY("link data hard", link("data", "hard"));
    show_stat("stat data after link", stat("data", &st), &st);
    TRY("link onto existing", link("data", "hard"));
    TRY("rename hard -> renamed", rename("hard", "renamed"));
    TRY("rename missing", rename("hard", "x"));
    TRY("rename file over dir", rename("renamed", "dir"));
    TRY("rename dir into itself", rename("dir", "dir/sub"));
    mkdir("empty", 0700);
    TRY("rename dir over empty dir", rename("empty", "empty2"));
    TRY("renameat2 NOREPLACE onto existing", renameat2(AT_FDCWD, "renamed", AT_FDCWD, "data",
                                                       RENAME_NOREPLACE));
    TRY("unlink renamed", unlink("renamed"));
    show_stat("stat data after unlink", stat("data", &st), &st);
    TRY("unlink missing", unlink("renamed"));
    TRY("unlinkat dir AT_REMOVEDIR", unlinkat(AT_FDCWD, "empty2", AT_REMOVEDIR));
    char longname[NAME_MAX + 10];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    TRY("open name > NAME_MAX", open(longname, O_RDONLY));
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "dir/f%d", 4 - i);
        close(open(name, O_CREAT | O_WRONLY, 0644));
    }
    DIR *d = opendir("dir");
    char *names[32];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && count < 32)
        names[count++] = strdup(e->d_name);
    closedir(d);
    for (int i = 0; i < count; i++)
        for (int j = i + 1; j < count; j++)
            if (strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    printf("readdir dir (%d entries):", count);
    for (int i = 0; i < count; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
    TRY("opendir on file (NULL=0)", opendir("data") != NULL);
}

static void descriptors(void)
{
    int fd = open("data", O_RDWR);
    int fl = fcntl(fd, F_GETFL);
    printf("F_GETFL accmode RDWR=%d append=%d\n", (fl & O_ACCMODE) == O_RDWR, (fl & O_APPEND) != 0);
    TRY("F_SETFL O_APPEND|O_NONBLOCK", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
    fl = fcntl(fd, F_GETFL);
    printf("F_GETFL append=%d nonblock=%d\n", (fl & O_APPEND) != 0, (fl & O_NONBLOCK) != 0);
    TRY("F_GETFD", fcntl(fd, F_GETFD));
    int d1 = fcntl(fd, F_DUPFD, 50);
    printf("F_DUPFD 50 -> >=50: %d, F_GETFD %d\n", d1 >= 50, fcntl(d1, F_GETFD));
    int d2 = fcntl(fd, F_DUPFD_CLOEXEC, 50);
    printf("F_DUPFD_CLOEXEC 50 -> next: %d, F_GETFD %d\n", d2 == d1 + 1, fcntl(d2, F_GETFD));
    TRY("F_SETFD FD_CLOEXEC", fcntl(d1, F_SETFD, FD_CLOEXEC));
    TRY("F_GETFD after set", fcntl(d1, F_GETFD));
    TRY("fcntl bad fd", fcntl(999, F_GETFD));
    TRY("fcntl bad cmd", fcntl(fd, 9999));
    /* dup returns the lowest free descriptor. */
    int low = dup(fd);
    close(low);
    int again = dup(fd);
    printf("dup reuses lowest free fd: %d\n", again == low);
    lseek(fd, 3, SEEK_SET);
    printf("dup shares offset: %lld\n", (long long)lseek(again, 0, SEEK_CUR));
    TRY("dup2 to itself", dup2(fd, fd) == fd);
    TRY("dup3 to itself", dup3(fd, fd, 0));
    TRY("dup3 bad flags", dup3(fd, 60, 12345));
    TRY("dup3 O_CLOEXEC to 60", dup3(fd, 60, O_CLOEXEC));
    TRY("F_GETFD of 60", fcntl(60, F_GETFD));
    TRY("dup2 replaces 60", dup2(again, 60));
    TRY("F_GETFD of 60 after dup2", fcntl(60, F_GETFD));
    TRY("dup bad fd", dup(999));
    close(60);
    close(d1);
    close(d2);
    close(again);
    close(fd);
}

static void access_cwd_umask(void)
{
    TRY("access data R_OK|W_OK", access("data", R_OK | W_OK));
    TRY("access data X_OK", access("data", X_OK));
    TRY("access missing F_OK", access("nope", F_OK));
    TRY("access dir X_OK", access("dir", X_OK));
    TRY("faccessat AT_EACCESS", faccessat(AT_FDCWD, "data", R_OK, AT_EACCESS));
    char before[PATH_MAX], after[PATH_MAX];
    getcwd(before, sizeof before);
    TRY("chdir dir", chdir("dir"));
    getcwd(after, sizeof after);
    size_t bl = strlen(before);
    printf("getcwd after chdir = previous + \"%s\"\n",
           strncmp(before, after, bl) == 0 ? after + bl : "(unrelated)");
    TRY("chdir file", chdir("f1"));
    TRY("chdir missing", chdir("nope"));
    TRY("chdir ..", chdir(".."));
    getcwd(after, sizeof after);
    printf("back at start: %d\n", strcmp(before, after) == 0);
    int dfd = open("dir", O_RDONLY | O_DIRECTORY);
    fchdir(dfd);
    printf("fchdir: f1 visible=%d\n", access("f1", F_OK) == 0);
    chdir("..");
    close(dfd);
    TRY("getcwd tiny buffer (NULL=0)", getcwd(after, 2) != NULL);
    printf("  errno %s\n", errname(errno));

    umask(077);
    printf("umask(022) returned %04o\n", (unsigned)umask(022));
    struct stat st;
    close(open("masked", O_CREAT | O_WRONLY, 0666));
    show_stat("created 0666 under 022", stat("masked", &st), &st);
    mkdir("maskdir", 0777);
    show_stat("mkdir 0777 under 022", stat("maskdir", &st), &st);
    TRY("chmod masked 0600", chmod("masked", 0600));
    show_stat("after chmod", stat("masked", &st), &st);
    int fd = open("masked", O_RDONLY);
    TRY("fchmod 0751", fchmod(fd, 0751));
    show_stat("after fchmod", fstat(fd, &st), &st);
    close(fd);
    unlink("masked");
    rmdir("maskdir");
}

static void too_many(void)
{
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim.rlim_cur = 64;
    lim.rlim_max = old.rlim_max;
    TRY("setrlimit NOFILE 64", setrlimit(RLIMIT_NOFILE, &lim));
    int fds[128], n = 0, err = 0;
    while (n < 128) {
        int fd = open("data", O_RDONLY);
        if (fd < 0) {
            err = errno;
            break;
        }
        fds[n++] = fd;
    }
    printf("opened until failure: stopped below limit=%d errno=%s last fd < 64=%d\n", n < 64,
           errname(err), n > 0 && fds[n - 1] < 64);
    TRY("dup at limit", dup(0));
    TRY("F_DUPFD at 64 (>= limit)", fcntl(fds[0], F_DUPFD, 64));
    int freed = fds[n / 2];
    close(freed);
    int r = open("data", O_RDONLY);
    printf("after closing one, open reuses it: %d\n", r == freed);
    fds[n / 2] = r;
    for (int i = 0; i < n; i++)
        close(fds[i]);
    setrlimit(RLIMIT_NOFILE, &old);
}

static void cleanup(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char sub[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            cleanup(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    char tmpl[] = "./files_XXXXXX";
    if (!mkdtemp(tmpl)) {
        char alt[] = "/tmp/files_XXXXXX";
        if (!mkdtemp(alt)) {
            printf("mkdtemp failed\n");
            return 1;
        }
        memcpy(tmpl, alt, sizeof tmpl);
    }
    char start[PATH_MAX];
    getcwd(start, sizeof start);
    umask(022);
    chdir(tmpl);
    io();
    stats();
    dirs_and_links();
    descriptors();
    access_cwd_umask();
    too_many();
    chdir(start);
    cleanup(tmpl);
    struct stat st;
    printf("temp dir removed: %d\n", stat(tmpl, &st) == -1 && errno == ENOENT);
    return 0;
}
