/* File locks between processes: a child waits for a flock and an open-file-description lock
 * (F_OFD_SETLKW) that its parent holds, and gets each once the parent lets go. The waits are
 * ordered by a pipe, so the output is fixed. Run on one worker, a wait that held its host
 * thread would never see the parent release. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
    struct timespec ts = { 0, ms * 1000000L };
    nanosleep(&ts, NULL);
}

static void ofd_lock(int fd, short type, int cmd)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (fcntl(fd, cmd, &fl) != 0) {
        printf("fcntl(%d): %s\n", cmd, strerror(errno));
        exit(1);
    }
}

int main(void)
{
    char path[] = "/tmp/shoal-locks-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    int go[2], ready[2];
    if (pipe(go) != 0 || pipe(ready) != 0)
        return 1;
    if (flock(fd, LOCK_EX) != 0)
        return 1;
    ofd_lock(fd, F_WRLCK, F_OFD_SETLK);
    printf("parent: holds both locks\n");
    fflush(stdout);

    pid_t child = fork();
    if (child == 0) {
        int mine = open(path, O_RDWR);
        char c;
        read(go[0], &c, 1);
        printf("child: flock while held: %s\n", flock(mine, LOCK_EX | LOCK_NB) == 0 ? "got it" : strerror(errno));
        fflush(stdout);
        write(ready[1], "w", 1);
        if (flock(mine, LOCK_EX) != 0)
            return 2;
        printf("child: flock after the parent let go\n");
        fflush(stdout);
        ofd_lock(mine, F_WRLCK, F_OFD_SETLKW);
        printf("child: ofd lock after the parent let go\n");
        fflush(stdout);
        return 0;
    }
    write(go[1], "g", 1);
    char c;
    read(ready[0], &c, 1);
    sleep_ms(50);
    printf("parent: releases the flock\n");
    fflush(stdout);
    flock(fd, LOCK_UN);
    sleep_ms(50);
    printf("parent: releases the ofd lock\n");
    fflush(stdout);
    ofd_lock(fd, F_UNLCK, F_OFD_SETLK);
    int status = 0;
    waitpid(child, &status, 0);
    printf("child exited %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    unlink(path);
    return 0;
}
