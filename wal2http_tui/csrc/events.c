/*
 * The compiled event path: event ids (UUIDv5) and the json format's row change payload, as
 * event_sinks/event_processor.py builds them in Python (its reference path).
 */
#include "native.h"

static const char HEX_DIGITS[] = "0123456789abcdef";

/* ``value`` in decimal into out (at most 20 characters); its length. */
static int decimal(long long value, char out[24]) {
    char reversed[24];
    int n = 0;
    unsigned long long magnitude =
        value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do {
        reversed[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    int length = 0;
    if (value < 0)
        out[length++] = '-';
    while (n)
        out[length++] = reversed[--n];
    return length;
}

/* UUIDv5 text of sha1(prefix + digits) into out[36]. */
static int uuid5(const char *prefix, Py_ssize_t prefix_len, const char *digits, int ndigits,
                 char out[36]) {
    char local[256];
    size_t len = (size_t)prefix_len + (size_t)ndigits;
    char *message = len <= sizeof(local) ? local : PyMem_Malloc(len);
    if (message == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(message, prefix, (size_t)prefix_len);
    memcpy(message + prefix_len, digits, (size_t)ndigits);
    unsigned char digest[20];
    sha1((const unsigned char *)message, len, digest);
    if (message != local)
        PyMem_Free(message);
    digest[6] = (digest[6] & 0x0F) | 0x50;
    digest[8] = (digest[8] & 0x3F) | 0x80;
    for (int i = 0, o = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = HEX_DIGITS[digest[i] >> 4];
        out[o++] = HEX_DIGITS[digest[i] & 15];
    }
    return 0;
}

/* The id of the event the arguments name: args[0] the id prefix (bytes), args[1] its seq,
 * whose decimal digits it leaves in ``digits`` (their count is returned; -1 on error);
 * ``usage`` is the TypeError's text when there are not ``expected`` arguments. */
static int id_of(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t expected, const char *usage,
                 char digits[24], char out[36]) {
    if (nargs != expected) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "the id prefix must be bytes");
        return -1;
    }
    long long seq = PyLong_AsLongLong(args[1]);
    if (seq == -1 && PyErr_Occurred())
        return -1;
    int ndigits = decimal(seq, digits);
    if (uuid5(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), digits, ndigits, out) < 0)
        return -1;
    return ndigits;
}

static PyObject *event_id(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    char digits[24], out[36];
    if (id_of(args, nargs, 2, "event_id(prefix, seq)", digits, out) < 0)
        return NULL;
    return PyUnicode_FromStringAndSize(out, 36);
}

/* str's UTF-8 */
static int put_text(Buf *b, PyObject *text) {
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n);
    return s == NULL ? -1 : buf_put(b, s, n);
}

/* a row's JSON text; None (or ""): ``null`` */
static int put_text_or_null(Buf *b, PyObject *text) {
    if (text == Py_None || PyUnicode_GET_LENGTH(text) == 0)
        return buf_put(b, "null", 4);
    return put_text(b, text);
}

/* json_row_event(prefix, seq, head, new, old, key, unchanged_toast, middle, tail)
 *   -> (event_id, payload): what EventProcessor._row_payload writes for the json format. */
static PyObject *json_row_event(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    char digits[24], id[36];
    int ndigits = id_of(
        args, nargs, 9,
        "json_row_event(prefix, seq, head, new, old, key, unchanged_toast, middle, tail)", digits,
        id);
    if (ndigits < 0)
        return NULL;
    PyObject *head = args[2], *toast = args[6], *middle = args[7], *tail = args[8];
    for (int i = 2; i < 9; i++)
        if (i != 6 && !PyUnicode_Check(args[i]) && !(i >= 3 && i <= 5 && args[i] == Py_None)) {
            PyErr_SetString(PyExc_TypeError, "json_row_event: texts must be str (rows: or None)");
            return NULL;
        }
    if (!PyTuple_Check(toast)) {
        PyErr_SetString(PyExc_TypeError, "json_row_event: unchanged_toast must be a tuple");
        return NULL;
    }
    Buf b;
    buf_init(&b);
    PyObject *result = NULL;
    if (buf_put(&b, "{\"event_id\":\"", 13) < 0 || buf_put(&b, id, 36) < 0 ||
        buf_put(&b, "\",", 2) < 0 || put_text(&b, head) < 0 ||
        buf_put(&b, ",\"new\":", 7) < 0 || put_text_or_null(&b, args[3]) < 0 ||
        buf_put(&b, ",\"old\":", 7) < 0 || put_text_or_null(&b, args[4]) < 0 ||
        buf_put(&b, ",\"key\":", 7) < 0 || put_text_or_null(&b, args[5]) < 0 ||
        buf_put(&b, ",\"unchanged_toast\":[", 20) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(toast); i++) {
        PyObject *name = PyTuple_GET_ITEM(toast, i);
        Py_ssize_t n;
        const char *s = PyUnicode_Check(name) ? PyUnicode_AsUTF8AndSize(name, &n) : NULL;
        if (s == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "unchanged_toast names must be str");
            goto done;
        }
        if ((i && buf_byte(&b, ',') < 0) || put_json_string(&b, s, n, 0) < 0)
            goto done;
    }
    if (buf_byte(&b, ']') < 0 || put_text(&b, middle) < 0 || buf_put(&b, digits, ndigits) < 0 ||
        put_text(&b, tail) < 0)
        goto done;
    PyObject *event = PyUnicode_FromStringAndSize(id, 36);
    PyObject *payload = event ? PyBytes_FromStringAndSize(b.p, b.len) : NULL;
    if (payload != NULL)
        result = PyTuple_Pack(2, event, payload);
    Py_XDECREF(event);
    Py_XDECREF(payload);
done:
    buf_free(&b);
    return result;
}

static PyMethodDef methods[] = {
    {"event_id", (PyCFunction)(void (*)(void))event_id, METH_FASTCALL,
     "event_id(prefix, seq) -> str: the UUIDv5 of sha1(prefix + decimal seq)"},
    {"json_row_event", (PyCFunction)(void (*)(void))json_row_event, METH_FASTCALL,
     "json_row_event(prefix, seq, head, new, old, key, unchanged_toast, middle, tail) -> "
     "(event_id, payload): a row change's event id and json-format payload"},
    {NULL, NULL, 0, NULL},
};

int events_register(PyObject *m) { return PyModule_AddFunctions(m, methods); }
