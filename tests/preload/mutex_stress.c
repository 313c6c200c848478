/* THREADS threads each lock and unlock their own mutex PAIRS times; with
 * CHILD_PAIRS > 0 a forked child does the same CHILD_PAIRS times while the
 * threads run. Prints "THREAD <pid> <tid>" per thread and
 * "CHILD <pid> <tid>" for the child, so every event can be checked.
 * Usage: mutex_stress THREADS PAIRS CHILD_PAIRS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static long pairs;
static pthread_barrier_t ready;

static void churn(pthread_mutex_t *m, long n) {
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(m);
        pthread_mutex_unlock(m);
    }
}

static void *worker(void *arg) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    (void)arg;
    printf("THREAD %d %d\n", getpid(), gettid());
    fflush(stdout);
    pthread_barrier_wait(&ready);
    churn(&m, pairs);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 4) return 2;
    int threads = atoi(argv[1]);
    pairs = atol(argv[2]);
    long child_pairs = atol(argv[3]);
    pthread_t t[64];
    if (threads > 64) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_barrier_init(&ready, NULL, threads + 1);
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
    pthread_barrier_wait(&ready);
    pid_t child = -1;
    if (child_pairs > 0) {
        child = fork();
        if (child == 0) {
            pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
            printf("CHILD %d %d\n", getpid(), gettid());
            fflush(stdout);
            churn(&m, child_pairs);
            _exit(0);
        }
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    int status = 0;
    if (child > 0) waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 3;
}
