/* Times hooked calls for scripts/bench.d/preload: a pthread_mutex_lock +
 * unlock pair (no syscall, so the hook's own cost dominates) and read()
 * at the end of a regular file (one cheap syscall that the library names
 * and records). Prints the best of ROUNDS rounds, in ns per call.
 * Usage: bench_hooks ITERATIONS FILE */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 5

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    long n = atol(argv[1]);
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    int fd = open(argv[2], O_CREAT | O_TRUNC | O_RDONLY, 0600);
    if (fd < 0) {
        perror(argv[2]);
        return 2;
    }
    char buf[1];
    double best_pair = 1e18, best_read = 1e18;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            pthread_mutex_lock(&m);
            pthread_mutex_unlock(&m);
        }
        double t1 = now_ns();
        for (long i = 0; i < n; i++) {
            if (read(fd, buf, 1) != 0) return 3;
        }
        double t2 = now_ns();
        if ((t1 - t0) / n < best_pair) best_pair = (t1 - t0) / n;
        if ((t2 - t1) / n < best_read) best_read = (t2 - t1) / n;
    }
    printf("mutex_pair_ns %.1f\nread_eof_ns %.1f\n", best_pair, best_read);
    close(fd);
    return 0;
}
