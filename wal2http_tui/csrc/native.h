/*
 * The compiled hot path (wal2http_tui._native): what its parts share.
 *
 * rows.c renders row change messages (replication/native.py), events.c builds event ids and
 * payloads (event_sinks/event_processor.py), json.c writes JSON strings as orjson does and
 * checks UTF-8 as Python's decoder does, sha1.c hashes event ids. Each has a pure-Python
 * reference path it is tested against (tests/unit/test_native_*.py).
 */
#ifndef WAL2HTTP_NATIVE_H
#define WAL2HTTP_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* A growable byte buffer, on the stack until it outgrows it. */
typedef struct {
    char *p;
    Py_ssize_t len, cap;
    char local[2048];
} Buf;

static inline void buf_init(Buf *b) {
    b->p = b->local;
    b->len = 0;
    b->cap = (Py_ssize_t)sizeof(b->local);
}

static inline void buf_free(Buf *b) {
    if (b->p != b->local)
        PyMem_Free(b->p);
}

static inline int buf_reserve(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap;
    while (cap < b->len + more) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *p;
    if (b->p == b->local) {
        p = PyMem_Malloc((size_t)cap);
        if (p != NULL)
            memcpy(p, b->local, (size_t)b->len);
    } else {
        p = PyMem_Realloc(b->p, (size_t)cap);
    }
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static inline int buf_byte(Buf *b, char c) {
    if (b->len == b->cap && buf_reserve(b, 1) < 0)
        return -1;
    b->p[b->len++] = c;
    return 0;
}


/* json.c */
int utf8_valid(const unsigned char *s, Py_ssize_t n);
/* A JSON string, escaped as orjson escapes it; ``replace_space``: the first ' ' becomes 'T'. */
int put_json_string(Buf *b, const char *s, Py_ssize_t n, int replace_space);

/* sha1.c */
void sha1(const unsigned char *data, size_t len, unsigned char digest[20]);

/* rows.c, events.c: add their types and functions to the module */
int rows_register(PyObject *module);
int events_register(PyObject *module);

#endif
