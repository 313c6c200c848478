/* A tiny CPython extension whose functions wait on and signal a pthread
 * condition variable with the GIL released: a one-slot mailbox.
 *
 *   put(v), put_all(v): store v in the mailbox under the mutex and signal
 *       (put_all: broadcast) the condition; return 0 or an error code.
 *   put_unlocked_holding_gil(v): fill the mailbox and signal without the
 *       mutex and without releasing the GIL (a bug: the signal can fall
 *       between a waiter's check of the mailbox and its wait).
 *   take(): wait, in a predicate loop, until the mailbox is full, then
 *       empty it; returns the value, or minus the error of a failed call.
 *   peek(): as take(), leaving the value in the mailbox.
 *   take_once(): the classic missed-signal bug: waits once, with no
 *       predicate check, so a put() made before it waits is never seen.
 *   take_within(ms): as take(), waiting at most ms milliseconds with
 *       pthread_cond_timedwait; returns minus ETIMEDOUT when it times out.
 *   reset(): empty the mailbox.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <pthread.h>
#include <time.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int full;
static long slot;

static int put_value(long v, int all) {
    int rc = pthread_mutex_lock(&lock);
    if (rc != 0)
        return rc;
    slot = v;
    full = 1;
    rc = all ? pthread_cond_broadcast(&changed) : pthread_cond_signal(&changed);
    pthread_mutex_unlock(&lock);
    return rc;
}

/* Waits until the mailbox is full (at most `ms` milliseconds when ms >= 0);
 * `empty` takes the value out. */
static long take_value(int empty, long ms) {
    struct timespec deadline;
    int rc = pthread_mutex_lock(&lock);
    if (rc != 0)
        return -rc;
    if (ms >= 0) {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += ms / 1000;
        deadline.tv_nsec += (ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec += 1;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    while (!full) {
        rc = ms >= 0 ? pthread_cond_timedwait(&changed, &lock, &deadline) : pthread_cond_wait(&changed, &lock);
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&lock);
            return -rc;
        }
        if (rc != 0)
            return -rc; /* the wait failed without the mutex (EDEADLK) */
    }
    long v = slot;
    if (empty)
        full = 0;
    pthread_mutex_unlock(&lock);
    return v;
}

static long take_once_value(void) {
    int rc = pthread_mutex_lock(&lock);
    if (rc != 0)
        return -rc;
    rc = pthread_cond_wait(&changed, &lock); /* bug: no `while (!full)` */
    if (rc != 0)
        return -rc;
    long v = slot;
    full = 0;
    pthread_mutex_unlock(&lock);
    return v;
}

static PyObject *put(PyObject *self, PyObject *args) {
    long v;
    int rc;
    if (!PyArg_ParseTuple(args, "l", &v))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = put_value(v, 0);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *put_unlocked_holding_gil(PyObject *self, PyObject *args) {
    long v;
    if (!PyArg_ParseTuple(args, "l", &v))
        return NULL;
    slot = v;
    full = 1;
    return PyLong_FromLong(pthread_cond_signal(&changed));
}

static PyObject *put_all(PyObject *self, PyObject *args) {
    long v;
    int rc;
    if (!PyArg_ParseTuple(args, "l", &v))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = put_value(v, 1);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *take(PyObject *self, PyObject *unused) {
    long v;
    Py_BEGIN_ALLOW_THREADS
    v = take_value(1, -1);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(v);
}

static PyObject *peek(PyObject *self, PyObject *unused) {
    long v;
    Py_BEGIN_ALLOW_THREADS
    v = take_value(0, -1);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(v);
}

static PyObject *take_once(PyObject *self, PyObject *unused) {
    long v;
    Py_BEGIN_ALLOW_THREADS
    v = take_once_value();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(v);
}

static PyObject *take_within(PyObject *self, PyObject *args) {
    long ms, v;
    if (!PyArg_ParseTuple(args, "l", &ms))
        return NULL;
    if (ms < 0) {
        PyErr_SetString(PyExc_ValueError, "a timeout of 0 ms or more");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    v = take_value(1, ms);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(v);
}

static PyObject *reset(PyObject *self, PyObject *unused) {
    full = 0;
    slot = 0;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"put", put, METH_VARARGS, "fill the mailbox and signal"},
    {"put_unlocked_holding_gil", put_unlocked_holding_gil, METH_VARARGS, "fill and signal, no mutex, GIL held"},
    {"put_all", put_all, METH_VARARGS, "fill the mailbox and broadcast"},
    {"take", take, METH_NOARGS, "wait for a value and take it"},
    {"peek", peek, METH_NOARGS, "wait for a value and leave it"},
    {"take_once", take_once, METH_NOARGS, "wait once, without a predicate (a bug)"},
    {"take_within", take_within, METH_VARARGS, "take(), waiting at most ms milliseconds"},
    {"reset", reset, METH_NOARGS, "empty the mailbox"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_conds", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native_conds(void) { return PyModule_Create(&module); }
