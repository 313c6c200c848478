/* Looks up the symbols the preload library exports for the engine, as the
 * binding does, and prints what they say:
 *   PATH <path or (null)>  OWN <0|1>  VERSION <n>  ENV <FRONTRUN_RING or (unset)>
 *   SIZE <bytes of the ring file>
 * then runs "sh -c 'echo CHILD $FRONTRUN_RING'" to show what a child sees. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int main(void) {
    const char *(*path)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "frontrun_io_ring_path");
    int (*own)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "frontrun_io_ring_is_own");
    unsigned (*version)(void) = (unsigned (*)(void))dlsym(RTLD_DEFAULT, "frontrun_io_ring_version");
    if (!path || !own || !version) {
        printf("NOLIB\n");
        return 0;
    }
    const char *p = path();
    const char *env = getenv("FRONTRUN_RING");
    printf("PATH %s\nOWN %d\nVERSION %u\nENV %s\n", p ? p : "(null)", own(), version(),
           env ? env : "(unset)");
    struct stat st;
    if (p && stat(p, &st) == 0) printf("SIZE %lld\n", (long long)st.st_size);
    fflush(stdout);
    return system("echo CHILD $FRONTRUN_RING") == 0 ? 0 : 1;
}
