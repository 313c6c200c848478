/* A shared library that takes a mutex, standing in for an extension
 * module's dependency: its events must carry this library's file name. */
#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int counter;

void *mutex_user_lock_address(void) { return &lock; }

int mutex_user_bump(void) {
    pthread_mutex_lock(&lock);
    int v = ++counter;
    pthread_mutex_unlock(&lock);
    if (pthread_mutex_trylock(&lock) == 0) pthread_mutex_unlock(&lock);
    return v;
}
