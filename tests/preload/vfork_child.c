/* A vfork child shares its parent's memory (and so the preload library's
 * descriptor table) but not its descriptors. Here the child points
 * descriptor A at another file and writes to it before exiting; the
 * parent's own write to A afterwards must still be named after the
 * parent's file. Prints "PARENT <pid> <tid> <fd> <result>".
 * Usage: vfork_child PARENT_FILE CHILD_FILE */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    int a = open(argv[1], O_CREAT | O_TRUNC | O_WRONLY, 0600);
    int b = open(argv[2], O_CREAT | O_TRUNC | O_WRONLY, 0600);
    if (a < 0 || b < 0) return 2;
    pid_t child = vfork();
    if (child == 0) {
        dup2(b, a);
        write(a, "child", 5);
        close(b);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    long r = write(a, "parent", 6);
    printf("PARENT %d %d %d %ld\n", getpid(), gettid(), a, r);
    close(a);
    close(b);
    return 0;
}
