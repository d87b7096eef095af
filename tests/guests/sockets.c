/* Sockets and epoll: socketpair (stream, datagram), an AF_UNIX pathname server with a forked
 * client, TCP and UDP over 127.0.0.1, sendmsg/recvmsg with several iovecs, SCM_RIGHTS, MSG_PEEK,
 * shutdown, socket options, errno cases, SIGPIPE, epoll (level, edge, one-shot, timeouts, the data
 * word, sigmask) and waits cut short by a signal handler without SA_RESTART. Ports, addresses of
 * the host and buffer sizes are never printed, only checks on them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(int ok, const char *what) {
    if (!ok) {
        printf("FAILED: %s (errno %s)\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
        exit(1);
    }
}

static const char *err(int r) {
    if (r >= 0) return "ok";
    const char *n = strerrorname_np(errno);
    return n ? n : "?";
}

static void socketpairs(void) {
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair stream");
    printf("stream pair cloexec: %d\n", (fcntl(sv[0], F_GETFD) & FD_CLOEXEC) != 0);
    check(write(sv[0], "hello", 5) == 5, "write pair");
    char buf[16] = {0};
    printf("stream pair read: %zd \"%s\"\n", read(sv[1], buf, sizeof buf - 1), buf);
    close(sv[0]);
    printf("stream pair eof after close: %zd\n", read(sv[1], buf, sizeof buf));
    close(sv[1]);

    check(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) == 0, "socketpair dgram");
    send(sv[0], "abc", 3, 0);
    send(sv[0], "defgh", 5, 0);
    memset(buf, 0, sizeof buf);
    ssize_t a = recv(sv[1], buf, sizeof buf, 0);
    ssize_t b = recv(sv[1], buf + 3, sizeof buf - 3, 0);
    printf("dgram boundaries: %zd %zd \"%s\"\n", a, b, buf);
    send(sv[0], "truncated", 9, 0);
    memset(buf, 0, sizeof buf);
    struct iovec iov = {buf, 4};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(sv[1], &m, 0);
    printf("dgram truncated: %zd \"%s\" MSG_TRUNC=%d\n", n, buf, (m.msg_flags & MSG_TRUNC) != 0);
    int fl = fcntl(sv[1], F_GETFL);
    fcntl(sv[1], F_SETFL, fl | O_NONBLOCK);
    printf("empty nonblocking recv: %s\n", err(recv(sv[1], buf, 1, 0)));
    printf("MSG_DONTWAIT recv: %s\n", err(recv(sv[0], buf, 1, MSG_DONTWAIT)));
    close(sv[0]);
    close(sv[1]);
}

static void unix_server(void) {
    unlink("sock.srv");
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    check(s >= 0, "socket unix");
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strcpy(addr.sun_path, "sock.srv");
    check(bind(s, (struct sockaddr *)&addr, sizeof addr) == 0, "bind unix");
    printf("bind again: %s\n", err(bind(socket(AF_UNIX, SOCK_STREAM, 0), (struct sockaddr *)&addr, sizeof addr)));
    check(listen(s, 4) == 0, "listen unix");
    struct sockaddr_un got;
    socklen_t len = sizeof got;
    check(getsockname(s, (struct sockaddr *)&got, &len) == 0, "getsockname unix");
    printf("unix bound name: \"%s\" len %d\n", got.sun_path, (int)len);
    printf("socket file exists: %d\n", access("sock.srv", F_OK) == 0);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(c, (struct sockaddr *)&addr, sizeof addr) != 0) _exit(10);
        struct sockaddr_un peer;
        socklen_t pl = sizeof peer;
        if (getpeername(c, (struct sockaddr *)&peer, &pl) != 0) _exit(11);
        if (strcmp(peer.sun_path, "sock.srv") != 0) _exit(12);
        if (write(c, "ping", 4) != 4) _exit(13);
        char r[8] = {0};
        if (read(c, r, sizeof r) != 4 || memcmp(r, "pong", 4) != 0) _exit(14);
        _exit(0);
    }
    len = sizeof got;
    int c = accept4(s, (struct sockaddr *)&got, &len, SOCK_CLOEXEC);
    check(c >= 0, "accept unix");
    printf("accepted peer family %d unnamed %d cloexec %d\n", got.sun_family, len == sizeof(sa_family_t),
           (fcntl(c, F_GETFD) & FD_CLOEXEC) != 0);
    char buf[8] = {0};
    printf("server read: %zd \"%s\"\n", read(c, buf, sizeof buf), buf);
    check(write(c, "pong", 4) == 4, "write pong");
    int st;
    waitpid(pid, &st, 0);
    printf("client exit: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    close(c);
    close(s);
    struct sockaddr_un none = {.sun_family = AF_UNIX};
    strcpy(none.sun_path, "no-such.sock");
    int d = socket(AF_UNIX, SOCK_STREAM, 0);
    printf("connect missing path: %s\n", err(connect(d, (struct sockaddr *)&none, sizeof none)));
    close(d);
    unlink("sock.srv");

    /* A relative name whose absolute path is longer than sun_path still binds and connects. */
    char dir[101];
    memset(dir, 'd', 100);
    dir[100] = 0;
    check(mkdir(dir, 0700) == 0 && chdir(dir) == 0, "deep directory");
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un deep = {.sun_family = AF_UNIX, .sun_path = "deep.sock"};
    check(bind(s, (struct sockaddr *)&deep, sizeof deep) == 0 && listen(s, 1) == 0, "bind deep");
    d = socket(AF_UNIX, SOCK_STREAM, 0);
    check(connect(d, (struct sockaddr *)&deep, sizeof deep) == 0, "connect deep");
    len = sizeof got;
    getpeername(d, (struct sockaddr *)&got, &len);
    printf("deep peer name: \"%s\" len %d\n", got.sun_path, (int)len);
    c = accept(s, NULL, NULL);
    printf("deep accept: %d\n", c >= 0);
    close(c);
    close(d);
    close(s);
    unlink("deep.sock");
    check(chdir("..") == 0 && rmdir(dir) == 0, "leave deep directory");
}

static void tcp(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    check(s >= 0, "socket inet");
    int one = 1;
    check(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "SO_REUSEADDR");
    int v = 0;
    socklen_t vl = sizeof v;
    check(getsockopt(s, SOL_SOCKET, SO_REUSEADDR, &v, &vl) == 0, "get SO_REUSEADDR");
    printf("SO_REUSEADDR on: %d len %d\n", v != 0, (int)vl);
    int rcv = 65536;
    check(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv) == 0, "SO_RCVBUF");
    vl = sizeof v;
    check(getsockopt(s, SOL_SOCKET, SO_RCVBUF, &v, &vl) == 0, "get SO_RCVBUF");
    printf("SO_RCVBUF at least set: %d\n", v >= rcv);
    vl = sizeof v;
    getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl);
    printf("SO_TYPE stream: %d\n", v == SOCK_STREAM);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(bind(s, (struct sockaddr *)&a, sizeof a) == 0, "bind inet");
    check(listen(s, 4) == 0, "listen inet");
    socklen_t al = sizeof a;
    check(getsockname(s, (struct sockaddr *)&a, &al) == 0, "getsockname inet");
    printf("tcp port assigned: %d len %d\n", a.sin_port != 0, (int)al);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    check(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect inet");
    check(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0, "TCP_NODELAY");
    vl = sizeof v;
    getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &vl);
    printf("TCP_NODELAY on: %d\n", v != 0);
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    int t = accept(s, (struct sockaddr *)&peer, &pl);
    check(t >= 0, "accept inet");
    printf("peer is loopback: %d\n", peer.sin_family == AF_INET && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    struct sockaddr_in cp;
    socklen_t cpl = sizeof cp;
    getpeername(c, (struct sockaddr *)&cp, &cpl);
    printf("client peer port matches: %d\n", cp.sin_port == a.sin_port);
    /* More than a socket buffer holds, so the blocking send must wait for the reader. */
    size_t big = 4 << 20;
    char *out = malloc(big), *in = malloc(big);
    for (size_t i = 0; i < big; i++) out[i] = (char)(i * 31 + 7);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        ssize_t n = send(c, out, big, 0);
        _exit(n == (ssize_t)big ? 0 : 1);
    }
    ssize_t got = recv(t, in, big, MSG_WAITALL);
    int st;
    waitpid(pid, &st, 0);
    printf("tcp bulk: all %d same %d sender %d\n", got == (ssize_t)big, got == (ssize_t)big && memcmp(in, out, big) == 0,
           WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    free(out);
    free(in);
    check(send(c, "peekaboo", 8, 0) == 8, "send peek");
    char buf[16] = {0};
    ssize_t n = recv(t, buf, 4, MSG_PEEK | MSG_WAITALL);
    printf("MSG_PEEK: %zd \"%s\"\n", n, buf);
    memset(buf, 0, sizeof buf);
    n = recv(t, buf, 8, MSG_WAITALL);
    printf("after peek: %zd \"%s\"\n", n, buf);
    check(shutdown(c, SHUT_WR) == 0, "shutdown");
    printf("read after SHUT_WR: %zd\n", recv(t, buf, sizeof buf, 0));
    check(send(t, "back", 4, 0) == 4, "send back");
    memset(buf, 0, sizeof buf);
    printf("half-closed still reads: %zd \"%s\"\n", recv(c, buf, sizeof buf, 0), buf);
    printf("shutdown bad how: %s\n", err(shutdown(c, 7)));
    close(t);
    close(c);
    close(s);
}

static void udp(void) {
    int a = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
    check(a >= 0 && b >= 0, "socket udp");
    struct sockaddr_in sa = {.sin_family = AF_INET}, sb = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = sb.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    check(bind(a, (struct sockaddr *)&sa, sizeof sa) == 0 && bind(b, (struct sockaddr *)&sb, sizeof sb) == 0, "bind udp");
    socklen_t l = sizeof sa;
    getsockname(a, (struct sockaddr *)&sa, &l);
    l = sizeof sb;
    getsockname(b, (struct sockaddr *)&sb, &l);
    printf("udp nonblocking empty: %s\n", err(recv(a, &l, 1, 0)));
    check(sendto(a, "datagram", 8, 0, (struct sockaddr *)&sb, sizeof sb) == 8, "sendto");
    char buf[16] = {0};
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
    printf("udp recvfrom: %zd \"%s\" from sender %d len %d\n", n, buf, from.sin_port == sa.sin_port, (int)fl);
    /* A too-short address buffer is filled partly; the full length comes back. */
    sendto(a, "x", 1, 0, (struct sockaddr *)&sb, sizeof sb);
    char small[4];
    fl = sizeof small;
    recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)small, &fl);
    printf("udp short address buffer: len %d\n", (int)fl);
    printf("sendto bad address length: %s\n", err(sendto(a, "x", 1, 0, (struct sockaddr *)&sb, 3)));
    close(a);
    close(b);
}

static void messages(void) {
    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair msg");
    struct iovec out[3] = {{"one-", 4}, {"two-", 4}, {"three", 5}};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 3};
    printf("sendmsg 3 iovecs: %zd\n", sendmsg(sv[0], &m, 0));
    char p1[6] = {0}, p2[16] = {0};
    struct iovec in[2] = {{p1, 5}, {p2, 15}};
    struct msghdr r = {.msg_iov = in, .msg_iovlen = 2};
    ssize_t n = recvmsg(sv[1], &r, 0);
    printf("recvmsg 2 iovecs: %zd \"%s\" \"%s\" flags %d\n", n, p1, p2, r.msg_flags);

    /* SCM_RIGHTS: pass a pipe's read end and use it on the other side. */
    int pfd[2];
    check(pipe(pfd) == 0, "pipe");
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(2 * sizeof(int))];
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec one = {"F", 1};
    struct msghdr s = {.msg_iov = &one, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = CMSG_SPACE(sizeof(int))};
    struct cmsghdr *c = CMSG_FIRSTHDR(&s);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &pfd[0], sizeof(int));
    printf("sendmsg with SCM_RIGHTS: %zd\n", sendmsg(sv[0], &s, 0));
    close(pfd[0]);
    char byte = 0;
    struct iovec bi = {&byte, 1};
    memset(&ctl, 0xff, sizeof ctl);
    struct msghdr rr = {.msg_iov = &bi, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    n = recvmsg(sv[1], &rr, MSG_CMSG_CLOEXEC);
    struct cmsghdr *rc = CMSG_FIRSTHDR(&rr);
    int got = -1;
    if (rc && rc->cmsg_type == SCM_RIGHTS) memcpy(&got, CMSG_DATA(rc), sizeof got);
    printf("received %zd byte '%c', rights %d, len ok %d, controllen ok %d\n", n, byte, rc && rc->cmsg_type == SCM_RIGHTS,
           rc && rc->cmsg_len == CMSG_LEN(sizeof(int)), rr.msg_controllen == CMSG_SPACE(sizeof(int)));
    printf("received fd valid %d cloexec %d\n", fcntl(got, F_GETFD) >= 0, (fcntl(got, F_GETFD) & FD_CLOEXEC) != 0);
    check(write(pfd[1], "via passed fd", 13) == 13, "write pipe");
    char buf[32] = {0};
    printf("read through passed fd: %zd \"%s\"\n", read(got, buf, sizeof buf), buf);
    close(got);
    close(pfd[1]);

    /* A bad descriptor in SCM_RIGHTS. */
    int bad = 999;
    memcpy(CMSG_DATA(c), &bad, sizeof bad);
    printf("SCM_RIGHTS bad fd: %s\n", err(sendmsg(sv[0], &s, 0)));
    /* Control data that does not fit is cut off. */
    check(pipe(pfd) == 0, "pipe 2");
    memcpy(CMSG_DATA(c), &pfd[0], sizeof(int));
    sendmsg(sv[0], &s, 0);
    struct msghdr tiny = {.msg_iov = &bi, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = 8};
    n = recvmsg(sv[1], &tiny, 0);
    printf("control too small: %zd MSG_CTRUNC %d controllen %d\n", n, (tiny.msg_flags & MSG_CTRUNC) != 0,
           (int)tiny.msg_controllen);
    close(pfd[0]);
    close(pfd[1]);
    close(sv[0]);
    close(sv[1]);
}

static volatile int sigpipes, alarms;
static void on_pipe(int s) { (void)s; sigpipes++; }
static void on_alarm(int s) { (void)s; alarms++; }

static void errors(void) {
    printf("bogus family: %s\n", err(socket(12345, SOCK_STREAM, 0)));
    printf("bad type: %s\n", err(socket(AF_UNIX, 9, 0)));
    printf("inet socketpair: %s\n", err(socketpair(AF_INET, SOCK_STREAM, 0, (int[2]){0})));
    int pfd[2];
    pipe(pfd);
    printf("send on pipe: %s\n", err(send(pfd[1], "x", 1, 0)));
    int v;
    socklen_t vl = sizeof v;
    printf("getsockopt on pipe: %s\n", err(getsockopt(pfd[0], SOL_SOCKET, SO_TYPE, &v, &vl)));
    printf("listen on pipe: %s\n", err(listen(pfd[0], 1)));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    printf("bind bad fd: %s\n", err(bind(555, (struct sockaddr *)&un, sizeof un)));
    close(pfd[0]);
    close(pfd[1]);
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    vl = sizeof v;
    printf("unknown option level: %s\n", err(getsockopt(sv[0], 999, 1, &v, &vl)));
    printf("getsockname bad pointer: %s\n", err(getsockname(sv[0], (struct sockaddr *)8, &vl)));
    signal(SIGPIPE, on_pipe);
    close(sv[1]);
    printf("send to closed peer, MSG_NOSIGNAL: %s sigpipes %d\n", err(send(sv[0], "x", 1, MSG_NOSIGNAL)), sigpipes);
    printf("send to closed peer: %s sigpipes %d\n", err(send(sv[0], "x", 1, 0)), sigpipes);
    close(sv[0]);
    signal(SIGPIPE, SIG_DFL);
}

static int ewait(int ep, int timeout, struct epoll_event *ev) {
    memset(ev, 0, sizeof *ev * 4);
    return epoll_wait(ep, ev, 4, timeout);
}

static void epolls(void) {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    check(ep >= 0, "epoll_create1");
    printf("epoll cloexec: %d\n", (fcntl(ep, F_GETFD) & FD_CLOEXEC) != 0);
    printf("epoll_create1 bad flags: %s\n", err(epoll_create1(1)));
    struct epoll_event ev[4];
    int lt[2], et[2], os[2];
    pipe(lt);
    pipe(et);
    pipe(os);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = 0x1122334455667788ULL};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, lt[0], &e) == 0, "add lt");
    printf("add twice: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, lt[0], &e)));
    printf("del unknown: %s\n", err(epoll_ctl(ep, EPOLL_CTL_DEL, et[0], &e)));
    printf("add itself: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, ep, &e)));
    printf("add bad fd: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, 777, &e)));
    int reg = open("epoll-regular", O_CREAT | O_RDWR, 0600);
    printf("add regular file: %s\n", err(epoll_ctl(ep, EPOLL_CTL_ADD, reg, &e)));
    close(reg);
    unlink("epoll-regular");
    e = (struct epoll_event){.events = EPOLLIN | EPOLLET, .data.u32 = 2};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, et[0], &e) == 0, "add et");
    e = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 3};
    check(epoll_ctl(ep, EPOLL_CTL_ADD, os[0], &e) == 0, "add oneshot");

    printf("empty, timeout 0: %d\n", ewait(ep, 0, ev));
    printf("empty, timeout 30ms: %d\n", ewait(ep, 30, ev));
    write(lt[1], "a", 1);
    int n = ewait(ep, -1, ev);
    printf("level: %d events %#x data %#llx\n", n, ev[0].events, (unsigned long long)ev[0].data.u64);
    n = ewait(ep, 0, ev);
    printf("level again: %d data ok %d\n", n, ev[0].data.u64 == 0x1122334455667788ULL);
    char c;
    read(lt[0], &c, 1);
    printf("level after read: %d\n", ewait(ep, 0, ev));

    write(et[1], "b", 1);
    n = ewait(ep, 100, ev);
    printf("edge: %d data %u\n", n, ev[0].data.u32);
    printf("edge again: %d\n", ewait(ep, 0, ev));
    write(et[1], "c", 1);
    printf("edge new data: %d\n", ewait(ep, 0, ev));

    write(os[1], "d", 1);
    n = ewait(ep, 0, ev);
    printf("oneshot: %d data %u\n", n, ev[0].data.u32);
    printf("oneshot disarmed: %d\n", ewait(ep, 0, ev));
    e = (struct epoll_event){.events = EPOLLIN | EPOLLONESHOT, .data.u32 = 4};
    check(epoll_ctl(ep, EPOLL_CTL_MOD, os[0], &e) == 0, "mod oneshot");
    n = ewait(ep, 0, ev);
    printf("oneshot rearmed: %d data %u\n", n, ev[0].data.u32);

    /* Sockets: a fresh pair is writable, readable once data arrives, and HUP when the peer goes. */
    int sv[2];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    e = (struct epoll_event){.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.fd = sv[0]};
    epoll_ctl(ep, EPOLL_CTL_DEL, os[0], NULL);
    epoll_ctl(ep, EPOLL_CTL_DEL, et[0], NULL);
    check(epoll_ctl(ep, EPOLL_CTL_ADD, sv[0], &e) == 0, "add socket");
    n = ewait(ep, 0, ev);
    printf("socket: %d events %#x fd ok %d\n", n, ev[0].events, ev[0].data.fd == sv[0]);
    write(sv[1], "x", 1);
    n = ewait(ep, 0, ev);
    printf("socket with data: %d events %#x\n", n, ev[0].events);
    close(sv[1]);
    n = ewait(ep, 0, ev);
    printf("socket peer closed: %d events %#x\n", n, ev[0].events);
    /* Closing the last descriptor of a file takes it out of the set. */
    close(sv[0]);
    printf("after close: %d\n", ewait(ep, 0, ev));

    /* A signal handler without SA_RESTART cuts an infinite wait short with EINTR. */
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    n = ewait(ep, -1, ev);
    printf("epoll_wait interrupted: %d %s alarms %d\n", n, err(n), alarms);

    /* epoll_pwait with a mask that unblocks SIGALRM, which is blocked outside the call. */
    sigset_t block, wait_mask, now;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    struct timeval t0 = {0};
    /* Let the timer fire while SIGALRM is blocked: it stays pending. */
    while (1) {
        sigset_t p;
        sigpending(&p);
        if (sigismember(&p, SIGALRM)) break;
        select(0, NULL, NULL, NULL, &(struct timeval){0, 10000});
    }
    (void)t0;
    printf("pending while blocked, alarms %d\n", alarms);
    sigemptyset(&wait_mask);
    n = epoll_pwait(ep, ev, 4, 5000, &wait_mask);
    sigprocmask(SIG_BLOCK, NULL, &now);
    printf("epoll_pwait with unblocking mask: %d %s alarms %d, blocked again %d\n", n, err(n), alarms,
           sigismember(&now, SIGALRM));
    /* A mask that keeps it blocked lets the timeout run out. */
    setitimer(ITIMER_REAL, &it, NULL);
    n = epoll_pwait(ep, ev, 4, 150, &block);
    printf("epoll_pwait with blocking mask: %d alarms %d\n", n, alarms);
    sigprocmask(SIG_UNBLOCK, &block, NULL);
    printf("delivered after unblock, alarms %d\n", alarms);

    /* A blocking recv is cut short the same way. */
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    setitimer(ITIMER_REAL, &it, NULL);
    char buf[4];
    ssize_t r = recv(sv[0], buf, sizeof buf, 0);
    printf("recv interrupted: %zd %s alarms %d\n", r, err((int)r), alarms);
    /* With SA_RESTART the recv goes on and gets the data written after the signal. */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        usleep(150000);
        write(sv[1], "late", 4);
        _exit(0);
    }
    setitimer(ITIMER_REAL, &it, NULL);
    memset(buf, 0, sizeof buf);
    r = recv(sv[0], buf, sizeof buf, MSG_WAITALL);
    waitpid(pid, NULL, 0);
    printf("recv restarted: %zd \"%.4s\" alarms %d\n", r, buf, alarms);
    close(sv[0]);
    close(sv[1]);
    printf("maxevents 0: %s\n", err(epoll_wait(ep, ev, 0, 0)));
    printf("wait on non-epoll: %s\n", err(epoll_wait(lt[0], ev, 1, 0)));
    close(ep);
    close(lt[0]);
    close(lt[1]);
    close(et[0]);
    close(et[1]);
    close(os[0]);
    close(os[1]);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    socketpairs();
    unix_server();
    tcp();
    udp();
    messages();
    errors();
    epolls();
    return 0;
}
