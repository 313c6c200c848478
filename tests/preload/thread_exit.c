/* Writes to a file from a thread-specific-data destructor, which runs while
 * the thread exits, and from the main thread; linked against ctor_writer so
 * that a library constructor writes first. Prints:
 *   MAIN <pid> <tid> <fd> <result>
 *   EXIT <pid> <tid> <fd> <result>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int ctor_writer_linked(void);
static pthread_key_t key;
static const char *exit_path;

static void at_thread_exit(void *arg) {
    (void)arg;
    int fd = open(exit_path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    long r = write(fd, "bye", 3);
    printf("EXIT %d %d %d %ld\n", getpid(), gettid(), fd, r);
    close(fd);
}

static void *worker(void *arg) {
    pthread_setspecific(key, arg);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3 || !ctor_writer_linked()) return 2;
    exit_path = argv[2];
    pthread_key_create(&key, at_thread_exit);
    int fd = open(argv[1], O_CREAT | O_TRUNC | O_WRONLY, 0600);
    long r = write(fd, "main", 4);
    printf("MAIN %d %d %d %ld\n", getpid(), gettid(), fd, r);
    close(fd);
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)1);
    pthread_join(t, NULL);
    fflush(stdout);
    return 0;
}
