/* Times send() of a PostgreSQL simple query for scripts/bench.d/preload:
 * once on a Unix socket the library treats as plain (one raw Write event
 * per send) and once on one whose path, .s.PGSQL.<port>, makes it a
 * PostgreSQL connection (the query is classified: DbAccess events). Sends
 * go in batches that fit the socket buffer; between batches, untimed, the
 * server end is emptied with a raw syscall the library does not see, so
 * no other thread competes for the CPU. Prints the best of ROUNDS rounds,
 * in ns per send.
 * Usage: bench_db_send ITERATIONS DIR */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 5
#define BATCH 64

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Read exactly `len` bytes from the server end, unseen by the library. */
static void drain(int fd, size_t len) {
    static char buf[1 << 16];
    while (len > 0) {
        size_t want = len < sizeof buf ? len : sizeof buf;
        long got = syscall(SYS_recvfrom, fd, buf, want, 0, NULL, NULL);
        if (got <= 0) exit(4);
        len -= (size_t)got;
    }
}

/* Listen on DIR/NAME and connect to it; returns the client end and sets
 * the accepted end. */
static int pair(const char *dir, const char *name, int *server) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%s", dir, name);
    unlink(a.sun_path);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) {
        perror(a.sun_path);
        exit(2);
    }
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        exit(2);
    }
    *server = accept(l, NULL, NULL);
    return c;
}

static void put32(unsigned char *p, uint32_t v) {
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
}

/* ns per send of `n` sends of `msg` on `c`, drained from `s`. */
static double timed(int c, int s, const unsigned char *msg, size_t len, long n) {
    double total = 0;
    for (long done = 0; done < n; done += BATCH) {
        double t0 = now_ns();
        for (int i = 0; i < BATCH; i++)
            if (send(c, msg, len, 0) != (ssize_t)len) exit(3);
        total += now_ns() - t0;
        drain(s, len * BATCH);
    }
    return total / ((n + BATCH - 1) / BATCH * BATCH);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = atol(argv[1]);
    int s1, s2;
    int plain = pair(argv[2], "plain.sock", &s1);
    int pg = pair(argv[2], ".s.PGSQL.5999", &s2);

    /* StartupMessage: length, protocol 3.0, user=bench, terminator. */
    unsigned char startup[64];
    const char params[] = "user\0bench\0";
    uint32_t slen = 8 + sizeof params;
    put32(startup, slen);
    put32(startup + 4, 196608);
    memcpy(startup + 8, params, sizeof params);
    if (send(pg, startup, slen, 0) != (ssize_t)slen) return 3;
    drain(s2, slen);

    const char sql[] = "SELECT balance FROM accounts WHERE id = 1";
    unsigned char query[128];
    query[0] = 'Q';
    put32(query + 1, 4 + sizeof sql);
    memcpy(query + 5, sql, sizeof sql);
    size_t qlen = 1 + 4 + sizeof sql;

    double best_plain = 1e18, best_pg = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        double a = timed(plain, s1, query, qlen, n);
        double b = timed(pg, s2, query, qlen, n);
        if (a < best_plain) best_plain = a;
        if (b < best_pg) best_pg = b;
    }
    printf("raw_send_ns %.1f\npg_send_ns %.1f\n", best_plain, best_pg);
    return 0;
}
