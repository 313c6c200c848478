/* A CPython extension whose functions start their own pthreads, for the
 * tests of threads native code starts (test_native_threads.py builds it).
 *
 * The threads add one to a counter kept in a file (read, then write the
 * value plus one), the way the Python workers of native_threads.py do.
 *
 *   bump_in_thread(path): starts a thread that bumps the file and joins it
 *       (the GIL released), in one call;
 *   start_bump(path) / join_bump(): the same, started in one call and
 *       joined in a later one;
 *   start_blocked() / release_blocked(): a thread that waits on a pipe
 *       until released (release_blocked does nothing when none runs), so
 *       that it outlives the worker that started it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char bump_path[4096];
static pthread_t bump_thread;
static int bump_started;

static pthread_t blocked_thread;
static int blocked_started;
static int blocked_pipe[2] = {-1, -1};

static void *bump(void *arg) {
    const char *path = arg;
    char buf[32] = {0};
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return (void *)1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    long value = n > 0 ? strtol(buf, NULL, 10) : 0;
    int len = snprintf(buf, sizeof buf, "%ld", value + 1);
    lseek(fd, 0, SEEK_SET);
    ssize_t w = write(fd, buf, (size_t)len);
    close(fd);
    return w == len ? NULL : (void *)1;
}

static int run_bump(const char *path) {
    pthread_t t;
    void *ret = NULL;
    if (pthread_create(&t, NULL, bump, (void *)path) != 0)
        return -1;
    if (pthread_join(t, &ret) != 0)
        return -1;
    return ret == NULL ? 0 : 1;
}

static PyObject *bump_in_thread(PyObject *self, PyObject *args) {
    const char *path;
    int rc;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = run_bump(path);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *start_bump(PyObject *self, PyObject *args) {
    const char *path;
    int rc;
    if (!PyArg_ParseTuple(args, "s", &path))
        return NULL;
    if (bump_started) {
        PyErr_SetString(PyExc_RuntimeError, "a bump is already running");
        return NULL;
    }
    snprintf(bump_path, sizeof bump_path, "%s", path);
    rc = pthread_create(&bump_thread, NULL, bump, bump_path);
    bump_started = rc == 0;
    return PyLong_FromLong(rc);
}

static PyObject *join_bump(PyObject *self, PyObject *unused) {
    void *ret = NULL;
    int rc;
    if (!bump_started) {
        PyErr_SetString(PyExc_RuntimeError, "no bump is running");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_join(bump_thread, &ret);
    Py_END_ALLOW_THREADS
    bump_started = 0;
    return PyLong_FromLong(rc != 0 ? -1 : ret == NULL ? 0 : 1);
}

static void *wait_on_pipe(void *arg) {
    char c;
    (void)arg;
    return read(blocked_pipe[0], &c, 1) == 1 ? NULL : (void *)1;
}

static PyObject *start_blocked(PyObject *self, PyObject *unused) {
    int rc;
    if (blocked_started) {
        PyErr_SetString(PyExc_RuntimeError, "a blocked thread is already running");
        return NULL;
    }
    if (blocked_pipe[0] < 0 && pipe(blocked_pipe) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    rc = pthread_create(&blocked_thread, NULL, wait_on_pipe, NULL);
    blocked_started = rc == 0;
    return PyLong_FromLong(rc);
}

/* Releases and joins the blocked thread, if one runs. */
static PyObject *release_blocked(PyObject *self, PyObject *unused) {
    void *ret = NULL;
    int rc;
    if (!blocked_started)
        return PyLong_FromLong(0);
    Py_BEGIN_ALLOW_THREADS
    rc = write(blocked_pipe[1], "x", 1) == 1 ? pthread_join(blocked_thread, &ret) : -1;
    Py_END_ALLOW_THREADS
    blocked_started = 0;
    return PyLong_FromLong(rc != 0 ? -1 : ret == NULL ? 0 : 1);
}

static PyMethodDef methods[] = {
    {"bump_in_thread", bump_in_thread, METH_VARARGS, "Bump the file's counter in a thread, joined."},
    {"start_bump", start_bump, METH_VARARGS, "Start a thread that bumps the file's counter."},
    {"join_bump", join_bump, METH_NOARGS, "Join the thread start_bump started."},
    {"start_blocked", start_blocked, METH_NOARGS, "Start a thread that waits until released."},
    {"release_blocked", release_blocked, METH_NOARGS, "Release and join that thread."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_threads", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native_threads(void) { return PyModule_Create(&module); }
