/* wal2http_tui._native: the compiled hot path (see native.h). */
#include "native.h"

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "wal2http_tui._native",
    .m_doc = "The compiled hot path: row changes (rows.c) and events (events.c).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (rows_register(m) < 0 || events_register(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
