/* /proc files about the process itself: maps, exe, cmdline, fd, stat, auxv, cpuinfo.
 * Prints only derived facts (never addresses or pids). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

static char buf[1 << 20];

/* Reads a whole file into buf (NUL-terminated); returns its length or -1. */
static long slurp(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    long n = 0, r;
    while ((r = read(fd, buf + n, sizeof buf - 1 - n)) > 0)
        n += r;
    close(fd);
    buf[n] = 0;
    return r < 0 ? -1 : n;
}

/* The maps line covering addr, copied into line; 0 if none. */
static int maps_line(uintptr_t addr, char *line, size_t size) {
    if (slurp("/proc/self/maps") < 0)
        return 0;
    for (char *p = buf; *p;) {
        char *end = strchr(p, '\n');
        if (!end)
            break;
        unsigned long lo, hi;
        if (sscanf(p, "%lx-%lx", &lo, &hi) == 2 && addr >= lo && addr < hi) {
            size_t n = (size_t)(end - p) < size - 1 ? (size_t)(end - p) : size - 1;
            memcpy(line, p, n);
            line[n] = 0;
            return 1;
        }
        p = end + 1;
    }
    return 0;
}

/* The permissions field of a line ("r-xp"). */
static const char *perms(const char *line) {
    static char p[5];
    const char *s = strchr(line, ' ');
    if (!s)
        return "";
    memcpy(p, s + 1, 4);
    p[4] = 0;
    return p;
}

/* The path field of a line ("" if anonymous). */
static const char *name(const char *line) {
    const char *s = line;
    for (int field = 0; field < 5 && s; field++) {
        s = strchr(s, ' ');
        if (s)
            while (*s == ' ')
                s++;
    }
    return s ? s : "";
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int main(int argc, char **argv) {
    char line[512], real[PATH_MAX];
    int have_real = realpath(argv[0], real) != NULL;

    /* Code lies in an r-xp mapping of the executable. */
    int code = maps_line((uintptr_t)&main, line, sizeof line);
    printf("code mapped: %d, r-xp: %d, names the executable: %d\n", code, code && !strcmp(perms(line), "r-xp"),
           code && have_real && !strcmp(name(line), real));

    /* A small malloc'd block lies in [heap] or an anonymous rw-p mapping. */
    char *block = malloc(64);
    int heap = maps_line((uintptr_t)block, line, sizeof line);
    printf("malloc block in rw-p heap or anonymous memory: %d\n",
           heap && !strcmp(perms(line), "rw-p") && (!strcmp(name(line), "[heap]") || !*name(line)));
    free(block);

    /* A stack variable lies in [stack]. */
    int local = 0;
    int stack = maps_line((uintptr_t)&local, line, sizeof line);
    printf("local variable in rw-p [stack]: %d\n", stack && !strcmp(perms(line), "rw-p") && !strcmp(name(line), "[stack]"));

    /* A mapped file shows its path; mprotect changes the permissions shown. */
    int fd = open("mapped.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
    char page[4096] = {1};
    write(fd, page, sizeof page);
    char cwd[PATH_MAX], want[PATH_MAX + 16];
    getcwd(cwd, sizeof cwd);
    snprintf(want, sizeof want, "%s/mapped.dat", cwd);
    char *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
    int file = map != MAP_FAILED && maps_line((uintptr_t)map, line, sizeof line);
    printf("mapped file: r--s %d, names the file: %d\n", file && !strcmp(perms(line), "r--s"),
           file && !strcmp(name(line), want));
    char *anon = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    mprotect(anon, 4096, PROT_READ);
    int a1 = maps_line((uintptr_t)anon, line, sizeof line);
    int first_ro = a1 && !strcmp(perms(line), "r--p") && !*name(line);
    int a2 = maps_line((uintptr_t)anon + 4096, line, sizeof line);
    int second_rw = a2 && !strcmp(perms(line), "rw-p");
    printf("mprotect splits the mapping: r--p then rw-p %d %d\n", first_ro, second_rw);
    munmap(anon, 8192);
    munmap(map, 4096);

    /* /proc/self/exe is the executable's real path. */
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    printf("readlink exe equals realpath(argv[0]): %d\n", n > 0 && have_real && !strcmp(exe, real));
    int exefd = open("/proc/self/exe", O_RDONLY);
    char magic[4] = {0};
    printf("open exe reads ELF magic: %d\n", exefd >= 0 && read(exefd, magic, 4) == 4 && !memcmp(magic, "\177ELF", 4));

    /* cmdline is argv, each followed by a NUL. */
    long len = slurp("/proc/self/cmdline");
    int same = len > 0;
    long at = 0;
    for (int i = 0; i < argc && same; i++) {
        size_t l = strlen(argv[i]);
        same = at + (long)l < len && !memcmp(buf + at, argv[i], l + 1);
        at += (long)l + 1;
    }
    printf("cmdline matches argv (%d args): %d\n", argc, same && at == len);

    /* /proc/self/fd lists 0 1 2 and the descriptors opened; readlink names the file. */
    DIR *d = opendir("/proc/self/fd");
    int seen[64] = {0};
    struct dirent *e;
    while (d && (e = readdir(d))) {
        int v = atoi(e->d_name);
        if (e->d_name[0] != '.' && v >= 0 && v < 64)
            seen[v] = 1;
    }
    printf("fd dir lists 0 1 2, the mapped file and exe: %d %d %d %d %d\n", seen[0], seen[1], seen[2], seen[fd],
           seen[exefd]);
    if (d)
        closedir(d);
    char link[64], target[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("fd link names the file: %d\n", n > 0 && !strcmp(target, want));
    int p[2];
    pipe(p);
    snprintf(link, sizeof link, "/proc/self/fd/%d", p[0]);
    n = readlink(link, target, sizeof target - 1);
    target[n > 0 ? n : 0] = 0;
    printf("pipe fd link says pipe:[: %d\n", n > 0 && !strncmp(target, "pipe:[", 6) && ends_with(target, "]"));
    close(fd);
    close(exefd);
    unlink("mapped.dat");

    /* stat's first field is the pid; its comm is in parentheses. */
    int pid = 0;
    printf("stat pid equals getpid: %d\n", slurp("/proc/self/stat") > 0 && sscanf(buf, "%d", &pid) == 1 && pid == getpid());
    /* qemu-riscv64 7.2 prints 0 for the state field, so the state (R, as Linux shows the reader
     * itself) is not checked. */
    int spid = -1;
    char *pidline = slurp("/proc/self/status") > 0 ? strstr(buf, "\nPid:") : NULL;
    printf("status Pid equals getpid: %d\n", pidline && sscanf(pidline + 5, "%d", &spid) == 1 && spid == getpid());

    /* auxv has AT_PAGESZ 4096 and the AT_ENTRY getauxval reports. */
    len = slurp("/proc/self/auxv");
    unsigned long pagesz = 0, entry = 0;
    int terminated = 0;
    for (long i = 0; i + 16 <= len; i += 16) {
        unsigned long k, v;
        memcpy(&k, buf + i, 8);
        memcpy(&v, buf + i + 8, 8);
        if (k == AT_PAGESZ)
            pagesz = v;
        if (k == AT_ENTRY)
            entry = v;
        if (k == AT_NULL)
            terminated = i + 16 == len;
    }
    printf("auxv: AT_PAGESZ %lu, AT_ENTRY matches: %d, ends with AT_NULL: %d\n", pagesz,
           entry != 0 && entry == getauxval(AT_ENTRY), terminated);

    /* /proc/cpuinfo is not checked: qemu-riscv64 7.2 passes the host's through (its riscv64
     * cpuinfo emulation came later), while Linux and shoal show an "isa : rv64..." line per hart. */

    /* Dot-dot inside /proc, and a name that only starts like "self". */
    printf("/proc/self/../self/comm opens: %d\n", open("/proc/self/../self/comm", O_RDONLY) >= 0);
    printf("/proc/selfish/comm opens: %d\n", open("/proc/selfish/comm", O_RDONLY) >= 0);
    return 0;
}
