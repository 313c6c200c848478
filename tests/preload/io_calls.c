/* Makes every hooked I/O call once on a known resource and prints, for
 * each, what the preload library should record:
 *
 *   PID <pid> <tid>
 *   NAME <fd> <resource>              what <fd> refers to from now on
 *   CALL <call> <fd> <result> <block> [<resource>]
 *
 * <result> is the return value, or -errno on failure; <block> is "block"
 * when the call may wait for a peer (the library then records entering and
 * leaving it), else "noblock"; a trailing <resource> overrides the fd's
 * name (sendto on an unconnected socket is named by its destination).
 * Calls on pipes, stdio, listening and unconnected sockets are made too,
 * and must produce no event. With "quiet" as second argument only the data
 * received is printed, so that runs with and without the library compare.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

static int quiet;
static pid_t tid;

static long res(long r) { return r < 0 ? -errno : r; }

static void call(const char *name, int fd, long r, const char *block, const char *resource) {
    if (quiet) return;
    if (resource)
        printf("CALL %s %d %ld %s %s\n", name, fd, r, block, resource);
    else
        printf("CALL %s %d %ld %s\n", name, fd, r, block);
}

static void name_fd(int fd, const char *resource) {
    if (!quiet) printf("NAME %d %s\n", fd, resource);
}

static void got(const char *what, const char *buf, long n) {
    printf("DATA %s %.*s\n", what, n > 0 ? (int)n : 0, buf);
}

static int tcp_listener(struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    socklen_t len = sizeof *addr;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof *addr) || listen(fd, 4) ||
        getsockname(fd, (struct sockaddr *)addr, &len)) {
        perror("listener");
        exit(2);
    }
    return fd;
}

int main(int argc, char **argv) {
    char buf[256], resource[512], path[400];
    if (argc < 2) {
        fprintf(stderr, "usage: io_calls SCRATCH_DIR [quiet]\n");
        return 2;
    }
    quiet = argc > 2 && strcmp(argv[2], "quiet") == 0;
    tid = gettid();
    if (!quiet) printf("PID %d %d\n", getpid(), tid);

    /* TCP over IPv4: every send and receive flavour. */
    struct sockaddr_in addr;
    int lfd = tcp_listener(&addr);
    int cfd = socket(AF_INET, SOCK_STREAM, 0);
    long r = connect(cfd, (struct sockaddr *)&addr, sizeof addr);
    snprintf(resource, sizeof resource, "socket:127.0.0.1:%d", ntohs(addr.sin_port));
    name_fd(cfd, resource);
    call("connect", cfd, res(r), "noblock", NULL);
    int sfd = accept(lfd, NULL, NULL);
    struct sockaddr_in local;
    socklen_t llen = sizeof local;
    getsockname(cfd, (struct sockaddr *)&local, &llen);
    snprintf(resource, sizeof resource, "socket:127.0.0.1:%d", ntohs(local.sin_port));
    name_fd(sfd, resource);

    r = send(cfd, "hello", 5, 0);
    call("send", cfd, res(r), "noblock", NULL);
    r = sendto(cfd, "x", 1, 0, NULL, 0);
    call("sendto", cfd, res(r), "noblock", NULL);
    struct iovec iov[2] = {{"ab", 2}, {"c", 1}};
    struct msghdr msg = {0};
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    r = sendmsg(cfd, &msg, 0);
    call("sendmsg", cfd, res(r), "noblock", NULL);
    r = write(cfd, "zz", 2);
    call("write", cfd, res(r), "noblock", NULL);
    struct iovec wv[2] = {{"y", 1}, {"w", 1}};
    r = writev(cfd, wv, 2);
    call("writev", cfd, res(r), "noblock", NULL);

    r = recv(sfd, buf, 5, 0);
    call("recv", sfd, res(r), "block", NULL);
    got("recv", buf, r);
    r = recvfrom(sfd, buf, 1, 0, NULL, NULL);
    call("recvfrom", sfd, res(r), "block", NULL);
    got("recvfrom", buf, r);
    struct iovec rv[1] = {{buf, 3}};
    struct msghdr rmsg = {0};
    rmsg.msg_iov = rv;
    rmsg.msg_iovlen = 1;
    r = recvmsg(sfd, &rmsg, 0);
    call("recvmsg", sfd, res(r), "block", NULL);
    got("recvmsg", buf, r);
    r = read(sfd, buf, 2);
    call("read", sfd, res(r), "block", NULL);
    got("read", buf, r);
    struct iovec rv2[2] = {{buf, 1}, {buf + 1, 1}};
    r = readv(sfd, rv2, 2);
    call("readv", sfd, res(r), "block", NULL);
    got("readv", buf, r);
    r = recv(sfd, buf, 1, MSG_DONTWAIT);
    call("recv", sfd, res(r), "noblock", NULL);

    /* Waiting for a peer: poll, ppoll and select with a timeout block;
     * with a zero timeout they do not, and record nothing. */
    send(cfd, "p", 1, 0);
    call("send", cfd, 1, "noblock", NULL);
    struct pollfd pfd = {sfd, POLLIN, 0};
    r = poll(&pfd, 1, 0);
    r = poll(&pfd, 1, 5000);
    call("poll", sfd, res(r), "block", NULL);
    struct timespec ts = {5, 0};
    r = ppoll(&pfd, 1, &ts, NULL);
    call("ppoll", sfd, res(r), "block", NULL);
    fd_set rs;
    FD_ZERO(&rs);
    FD_SET(sfd, &rs);
    struct timeval tv = {5, 0};
    r = select(sfd + 1, &rs, NULL, NULL, &tv);
    call("select", sfd, res(r), "block", NULL);
    r = recv(sfd, buf, 1, 0);
    call("recv", sfd, res(r), "block", NULL);
    got("recv", buf, r);

    /* A regular file, named by its absolute path. */
    char dir[300];
    if (!realpath(argv[1], dir)) {
        perror("realpath");
        return 2;
    }
    snprintf(path, sizeof path, "%s/data.txt", dir);
    int ffd = open(path, O_CREAT | O_TRUNC | O_RDWR, 0600);
    snprintf(resource, sizeof resource, "file:%s", path);
    name_fd(ffd, resource);
    r = write(ffd, "0123456789", 10);
    call("write", ffd, res(r), "noblock", NULL);
    struct iovec fv[2] = {{"ab", 2}, {"cd", 2}};
    r = writev(ffd, fv, 2);
    call("writev", ffd, res(r), "noblock", NULL);
    lseek(ffd, 0, SEEK_SET);
    r = read(ffd, buf, 4);
    call("read", ffd, res(r), "noblock", NULL);
    got("file", buf, r);
    struct iovec frv[2] = {{buf, 3}, {buf + 3, 3}};
    r = readv(ffd, frv, 2);
    call("readv", ffd, res(r), "noblock", NULL);
    got("file", buf, r);
    r = close(ffd);
    call("close", ffd, res(r), "noblock", NULL);

    /* A Unix socket, named by its path. */
    struct sockaddr_un ua = {0};
    ua.sun_family = AF_UNIX;
    if (strlen(dir) + sizeof "/sock" <= sizeof ua.sun_path)
        strcat(strcpy(ua.sun_path, dir), "/sock");
    else
        snprintf(ua.sun_path, sizeof ua.sun_path, "/tmp/io_calls_%d.sock", getpid());
    int ulfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(ulfd, (struct sockaddr *)&ua, sizeof ua) || listen(ulfd, 1)) {
        perror("unix listener");
        return 2;
    }
    int ucfd = socket(AF_UNIX, SOCK_STREAM, 0);
    r = connect(ucfd, (struct sockaddr *)&ua, sizeof ua);
    snprintf(resource, sizeof resource, "socket:unix:%s", ua.sun_path);
    name_fd(ucfd, resource);
    call("connect", ucfd, res(r), "noblock", NULL);
    int usfd = accept(ulfd, NULL, NULL);
    name_fd(usfd, resource);
    r = send(ucfd, "u", 1, 0);
    call("send", ucfd, res(r), "noblock", NULL);
    r = recv(usfd, buf, 1, 0);
    call("recv", usfd, res(r), "block", NULL);
    got("unix", buf, r);

    /* Unconnected UDP: sendto is named by its destination; the receiving
     * socket has no peer, so its recvfrom records nothing. */
    struct sockaddr_in uaddr = {0};
    socklen_t ulen = sizeof uaddr;
    uaddr.sin_family = AF_INET;
    uaddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int urfd = socket(AF_INET, SOCK_DGRAM, 0);
    bind(urfd, (struct sockaddr *)&uaddr, sizeof uaddr);
    getsockname(urfd, (struct sockaddr *)&uaddr, &ulen);
    int usendfd = socket(AF_INET, SOCK_DGRAM, 0);
    r = sendto(usendfd, "dgram", 5, 0, (struct sockaddr *)&uaddr, sizeof uaddr);
    snprintf(resource, sizeof resource, "socket:127.0.0.1:%d", ntohs(uaddr.sin_port));
    call("sendto", usendfd, res(r), "noblock", resource);
    r = recvfrom(urfd, buf, sizeof buf, 0, NULL, NULL);
    got("udp", buf, r);

    /* IPv6 loopback, when the machine has it. */
    int l6 = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a6 = {0};
    socklen_t l6len = sizeof a6;
    a6.sin6_family = AF_INET6;
    a6.sin6_addr = in6addr_loopback;
    if (l6 >= 0 && bind(l6, (struct sockaddr *)&a6, sizeof a6) == 0 && listen(l6, 1) == 0 &&
        getsockname(l6, (struct sockaddr *)&a6, &l6len) == 0) {
        int c6 = socket(AF_INET6, SOCK_STREAM, 0);
        r = connect(c6, (struct sockaddr *)&a6, sizeof a6);
        snprintf(resource, sizeof resource, "socket:[::1]:%d", ntohs(a6.sin6_port));
        name_fd(c6, resource);
        call("connect", c6, res(r), "noblock", NULL);
        r = send(c6, "6", 1, 0);
        call("send", c6, res(r), "noblock", NULL);
        r = close(c6);
        call("close", c6, res(r), "noblock", NULL);
    }

    /* Pipes and stdio are not resources. */
    int p[2];
    if (pipe(p) == 0) {
        write(p[1], "q", 1);
        r = read(p[0], buf, 1);
        got("pipe", buf, r);
        close(p[0]);
        close(p[1]);
    }

    r = close(sfd);
    call("close", sfd, res(r), "noblock", NULL);
    r = close(cfd);
    call("close", cfd, res(r), "noblock", NULL);
    r = close(usfd);
    call("close", usfd, res(r), "noblock", NULL);
    r = close(ucfd);
    call("close", ucfd, res(r), "noblock", NULL);
    close(lfd);
    close(ulfd);
    close(urfd);
    close(usendfd);
    if (l6 >= 0) close(l6);
    unlink(ua.sun_path);
    unlink(path);
    fflush(stdout);
    return 7;
}
