/* A tiny CPython extension whose functions take pthread mutexes with the
 * GIL released, the way C extensions guard their own state.
 *
 *   take(first, second): lock mutex `first`, then `second`, add one to the
 *       counter, unlock both; returns 0, or the error of a lock that failed
 *       (after releasing what it holds).
 *   take_holding_gil(first, second): the same without releasing the GIL.
 *   increment(): add one to the counter under mutex 0.
 *   acquire(i), release(i): lock or unlock mutex `i` (GIL released), so
 *       that Python code runs while the mutex is held.
 *   pairs(n): n lock/unlock pairs of mutex 0 (for scripts/bench gate).
 *   reset(), value(): the counter.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>

static pthread_mutex_t locks[2] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
static long counter;

int take_two(int first, int second) {
    int rc = pthread_mutex_lock(&locks[first]);
    if (rc != 0)
        return rc;
    rc = pthread_mutex_lock(&locks[second]);
    if (rc != 0) {
        pthread_mutex_unlock(&locks[first]);
        return rc;
    }
    counter += 1;
    pthread_mutex_unlock(&locks[second]);
    pthread_mutex_unlock(&locks[first]);
    return 0;
}

static PyObject *take(PyObject *self, PyObject *args) {
    int first, second, rc;
    if (!PyArg_ParseTuple(args, "ii", &first, &second))
        return NULL;
    if (first < 0 || first > 1 || second < 0 || second > 1 || first == second) {
        PyErr_SetString(PyExc_ValueError, "two different mutexes, 0 or 1");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    rc = take_two(first, second);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *take_holding_gil(PyObject *self, PyObject *args) {
    int first, second;
    if (!PyArg_ParseTuple(args, "ii", &first, &second))
        return NULL;
    if (first < 0 || first > 1 || second < 0 || second > 1 || first == second) {
        PyErr_SetString(PyExc_ValueError, "two different mutexes, 0 or 1");
        return NULL;
    }
    return PyLong_FromLong(take_two(first, second));
}

static int index_of(PyObject *args) {
    int i;
    if (!PyArg_ParseTuple(args, "i", &i))
        return -1;
    if (i < 0 || i > 1) {
        PyErr_SetString(PyExc_ValueError, "mutex 0 or 1");
        return -1;
    }
    return i;
}

static PyObject *acquire(PyObject *self, PyObject *args) {
    int i = index_of(args), rc;
    if (i < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_mutex_lock(&locks[i]);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

static PyObject *release(PyObject *self, PyObject *args) {
    int i = index_of(args), rc;
    if (i < 0)
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_mutex_unlock(&locks[i]);
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(rc);
}

long increment_locked(void) {
    pthread_mutex_lock(&locks[0]);
    long seen = counter;
    counter = seen + 1;
    pthread_mutex_unlock(&locks[0]);
    return seen;
}

static PyObject *increment(PyObject *self, PyObject *unused) {
    long seen;
    Py_BEGIN_ALLOW_THREADS
    seen = increment_locked();
    Py_END_ALLOW_THREADS
    return PyLong_FromLong(seen);
}

static PyObject *pairs(PyObject *self, PyObject *args) {
    long n;
    if (!PyArg_ParseTuple(args, "l", &n))
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    for (long i = 0; i < n; i++) {
        pthread_mutex_lock(&locks[0]);
        pthread_mutex_unlock(&locks[0]);
    }
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *reset(PyObject *self, PyObject *unused) {
    counter = 0;
    Py_RETURN_NONE;
}

static PyObject *value(PyObject *self, PyObject *unused) {
    return PyLong_FromLong(counter);
}

static PyMethodDef methods[] = {
    {"take", take, METH_VARARGS, "lock two mutexes in the given order"},
    {"take_holding_gil", take_holding_gil, METH_VARARGS, "take() without releasing the GIL"},
    {"acquire", acquire, METH_VARARGS, "lock one mutex"},
    {"release", release, METH_VARARGS, "unlock one mutex"},
    {"increment", increment, METH_NOARGS, "add one to the counter under a mutex"},
    {"pairs", pairs, METH_VARARGS, "n lock/unlock pairs of mutex 0"},
    {"reset", reset, METH_NOARGS, "set the counter to 0"},
    {"value", value, METH_NOARGS, "the counter"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native_locks", NULL, -1, methods};

PyMODINIT_FUNC PyInit__native_locks(void) { return PyModule_Create(&module); }
