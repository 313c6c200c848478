/* A shared library whose constructor writes to a file before main runs
 * (and before the preload library's own constructor, when the loader
 * initialises this library first). The file is $CTOR_FILE. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void write_from_constructor(void) {
    const char *path = getenv("CTOR_FILE");
    if (!path) return;
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    long r = write(fd, "constructor", 11);
    printf("CTOR %d %d %d %ld\n", getpid(), gettid(), fd, r);
    close(fd);
}

int ctor_writer_linked(void) { return 1; }
