/* Interval timers: alarm, setitimer(ITIMER_REAL) with an interval, pause woken by SIGALRM, and a
 * final alarm with the default action, which kills the guest (status 142). */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/time.h>
static volatile int hits;
static void on(int s) { (void)s; hits++; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on);
    alarm(1);
    printf("alarm remaining after set: %u\n", alarm(1));
    pause();
    printf("hits after pause: %d\n", hits);
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, 0);
    while (hits < 6) pause();
    struct itimerval z = {0};
    setitimer(ITIMER_REAL, &z, &it);
    printf("interval us: %ld hits>=6: %d\n", (long)it.it_interval.tv_usec, hits >= 6);
    signal(SIGALRM, SIG_DFL);
    alarm(1);
    sleep(5);
    return 0;
}
