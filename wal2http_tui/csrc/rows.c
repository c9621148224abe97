/*
 * The compiled row path: a pgoutput Insert, Update or Delete message -> the assembler's Change,
 * its rows already rendered as JSON text by the to_jsonb rule.
 *
 * It does in one pass of C what decoder._read_tuple, values.RowConverter, assembler._row_change
 * and orjson.dumps do in Python, and it is held to produce the same Change, byte for byte
 * (tests/unit/test_native_rows.py). Its rule is to decline rather than guess: whatever it is not
 * certain to render exactly as the Python path (an unknown relation, malformed bytes, a binary
 * column, a value in a form the fast rules below do not cover) makes change() return None, and
 * the caller decodes the message with the Python decoder instead, which renders it or raises
 * the exact ProtocolError. Column types it has no rule for are converted by their Python
 * converter and serialised by orjson from here, one value at a time.
 *
 * No length or count read from the wire is trusted: every read is checked against the end of
 * the buffer first.
 */
#include "native.h"

/* Column kinds: which fast rule renders a column (values.CONVERTER_KINDS names them). */
enum {
    K_TEXT = 0,     /* the output text as a JSON string */
    K_INT,          /* int2/int4/int8: the digits */
    K_BOOL,         /* 't' -> true, anything else false */
    K_NUMERIC,      /* the digits when the text ends in one, else a JSON string */
    K_FLOAT,        /* float4/float8: as numeric, without '-0' (exponents: the converter) */
    K_JSONB,        /* embedded as it is */
    K_TIMESTAMP,    /* the first space becomes 'T' */
    K_TIMESTAMPTZ,  /* as timestamp, '+00' becomes '+00:00' (other offsets: the converter) */
    K_PYTHON,       /* the Python converter, then orjson.dumps */
    K_ARRAY,        /* one-dimensional, no quoted element: each element by its kind's rule */
    K_COUNT
};

/* ---------------------------------------------------------------------------------------- */
/* Layout: what rendering one relation's rows needs, built once per Relation message.        */

typedef struct {
    PyObject_HEAD
    PyObject *relation; /* the RelationInfo it was built for */
    PyObject *schema, *table;
    PyObject *names;      /* tuple of str, one per column */
    PyObject *name_json;  /* tuple of bytes: '"name":' */
    PyObject *converters; /* tuple of callables */
    PyObject *element_converters; /* tuple: an array column's element converter, else None */
    Py_ssize_t ncols;
    unsigned char *kinds;
    unsigned char *element_kinds; /* an array column's elements' kind */
    char *delimiters;             /* an array column's element delimiter */
    Py_ssize_t nkeys;
    Py_ssize_t *key_positions; /* -1: a key column the relation does not have */
    PyObject *key_json;        /* tuple of bytes: '"key":' */
} Layout;

static void layout_dealloc(Layout *self) {
    Py_XDECREF(self->relation);
    Py_XDECREF(self->schema);
    Py_XDECREF(self->table);
    Py_XDECREF(self->names);
    Py_XDECREF(self->name_json);
    Py_XDECREF(self->converters);
    Py_XDECREF(self->element_converters);
    Py_XDECREF(self->key_json);
    PyMem_Free(self->kinds);
    PyMem_Free(self->element_kinds);
    PyMem_Free(self->delimiters);
    PyMem_Free(self->key_positions);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static unsigned char *copy_of(const char *bytes, Py_ssize_t n) {
    unsigned char *copy = PyMem_Malloc((size_t)(n ? n : 1));
    if (copy == NULL)
        PyErr_NoMemory();
    else
        memcpy(copy, bytes, (size_t)n);
    return copy;
}

static int layout_init(Layout *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"relation",   "schema",        "table",         "names",
                             "name_json",  "kinds",         "element_kinds", "delimiters",
                             "converters", "element_converters", "key_positions", "key_json",
                             NULL};
    PyObject *relation, *schema, *table, *names, *name_json, *converters, *element_converters,
        *key_positions, *key_json;
    const char *kinds, *element_kinds, *delimiters;
    Py_ssize_t nkinds, nelements, ndelimiters;
    if (self->kinds != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Layout is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OUUO!O!y#y#y#O!O!O!O!", kwlist, &relation, &schema, &table,
            &PyTuple_Type, &names, &PyTuple_Type, &name_json, &kinds, &nkinds, &element_kinds,
            &nelements, &delimiters, &ndelimiters, &PyTuple_Type, &converters, &PyTuple_Type,
            &element_converters, &PyTuple_Type, &key_positions, &PyTuple_Type, &key_json))
        return -1;
    Py_ssize_t ncols = PyTuple_GET_SIZE(names);
    Py_ssize_t nkeys = PyTuple_GET_SIZE(key_positions);
    int ok = nkinds == ncols && nelements == ncols && ndelimiters == ncols &&
             PyTuple_GET_SIZE(name_json) == ncols && PyTuple_GET_SIZE(converters) == ncols &&
             PyTuple_GET_SIZE(element_converters) == ncols && PyTuple_GET_SIZE(key_json) == nkeys;
    for (Py_ssize_t i = 0; ok && i < ncols; i++) {
        unsigned char kind = (unsigned char)kinds[i], element = (unsigned char)element_kinds[i];
        ok = kind < K_COUNT && PyUnicode_Check(PyTuple_GET_ITEM(names, i)) &&
             PyBytes_Check(PyTuple_GET_ITEM(name_json, i)) &&
             PyCallable_Check(PyTuple_GET_ITEM(converters, i)) &&
             (kind != K_ARRAY || (element < K_ARRAY && (unsigned char)delimiters[i] < 0x80 &&
                                  PyCallable_Check(PyTuple_GET_ITEM(element_converters, i))));
    }
    for (Py_ssize_t i = 0; ok && i < nkeys; i++)
        ok = PyBytes_Check(PyTuple_GET_ITEM(key_json, i));
    if (!ok) {
        PyErr_SetString(PyExc_ValueError,
                        "Layout: one name, name_json, kind, element kind, delimiter, converter "
                        "and element converter per column (arrays: an element kind below ARRAY, "
                        "an ASCII delimiter, a callable), one key_json per key position");
        return -1;
    }
    self->kinds = copy_of(kinds, ncols);
    self->element_kinds = copy_of(element_kinds, ncols);
    self->delimiters = (char *)copy_of(delimiters, ncols);
    self->key_positions = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(nkeys ? nkeys : 1));
    if (self->kinds == NULL || self->element_kinds == NULL || self->delimiters == NULL ||
        self->key_positions == NULL) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nkeys; i++) {
        Py_ssize_t position = PyLong_AsSsize_t(PyTuple_GET_ITEM(key_positions, i));
        if (position == -1 && PyErr_Occurred())
            return -1;
        self->key_positions[i] = position < ncols ? position : -1;
    }
    self->ncols = ncols;
    self->nkeys = nkeys;
    self->relation = Py_NewRef(relation);
    self->schema = Py_NewRef(schema);
    self->table = Py_NewRef(table);
    self->names = Py_NewRef(names);
    self->name_json = Py_NewRef(name_json);
    self->converters = Py_NewRef(converters);
    self->element_converters = Py_NewRef(element_converters);
    self->key_json = Py_NewRef(key_json);
    return 0;
}

static PyTypeObject LayoutType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wal2http_tui._native.Layout",
    .tp_basicsize = sizeof(Layout),
    .tp_dealloc = (destructor)layout_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "How one relation's rows are rendered (replication/native.py builds it).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)layout_init,
};

/* ---------------------------------------------------------------------------------------- */
/* Tuples: parsed first (every check), rendered after.                                       */

typedef struct {
    char kind; /* 't', 'n' or 'u' */
    const char *p;
    Py_ssize_t n;
} Column;

typedef struct {
    Py_ssize_t start, end; /* the rendered value's bytes in the scratch buffer; start < 0: none */
} Span;

/* Big-endian integers of the wire. */
static uint32_t read_u32(const char *p) {
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

static uint64_t read_u64(const char *p) {
    return ((uint64_t)read_u32(p) << 32) | read_u32(p + 4);
}

/* The tuple at *pos: 1 parsed, 0 declined (anything the Python decoder must judge). */
static int parse_tuple(const char *data, Py_ssize_t end, Py_ssize_t *pos, Py_ssize_t ncols,
                       Column *columns) {
    Py_ssize_t at = *pos;
    if (end - at < 2)
        return 0;
    int16_t count = (int16_t)(((unsigned char)data[at] << 8) | (unsigned char)data[at + 1]);
    if (count != ncols)
        return 0;
    at += 2;
    for (Py_ssize_t i = 0; i < ncols; i++) {
        if (at >= end)
            return 0;
        char kind = data[at++];
        if (kind == 'n' || kind == 'u') {
            columns[i].kind = kind;
            columns[i].p = NULL;
            columns[i].n = 0;
            continue;
        }
        if (kind != 't' || end - at < 4)
            return 0;
        int32_t length = (int32_t)read_u32(data + at);
        at += 4;
        if (length < 0 || length > end - at)
            return 0;
        if (!utf8_valid((const unsigned char *)data + at, length))
            return 0;
        columns[i].kind = 't';
        columns[i].p = data + at;
        columns[i].n = length;
        at += length;
    }
    *pos = at;
    return 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* The value through its Python converter and orjson.dumps (types without a fast rule, and
 * values in a form the fast rules leave to the converter). */
static int render_python(Buf *b, PyObject *convert, PyObject *dumps, const Column *c) {
    PyObject *text = PyUnicode_DecodeUTF8(c->p, c->n, "strict");
    if (text == NULL)
        return -1;
    PyObject *value = PyObject_CallOneArg(convert, text);
    Py_DECREF(text);
    if (value == NULL)
        return -1;
    PyObject *json = PyObject_CallOneArg(dumps, value);
    Py_DECREF(value);
    if (json == NULL)
        return -1;
    if (!PyBytes_Check(json)) {
        Py_DECREF(json);
        PyErr_SetString(PyExc_TypeError, "dumps must return bytes");
        return -1;
    }
    int result = buf_put(b, PyBytes_AS_STRING(json), PyBytes_GET_SIZE(json));
    Py_DECREF(json);
    return result;
}

/* A canonical integer (what int() then orjson write back unchanged): -?(0|[1-9][0-9]*),
 * at most 18 digits (always within 64 bits), never '-0'. */
static int canonical_int(const char *s, Py_ssize_t n) {
    Py_ssize_t i = s[0] == '-';
    Py_ssize_t digits = n - i;
    if (digits < 1 || digits > 18)
        return 0;
    if (s[i] == '0' && (digits > 1 || i))
        return 0;
    for (; i < n; i++)
        if (!is_digit(s[i]))
            return 0;
    return 1;
}

/* One text value by its kind's rule. */
static int render_value(Buf *b, unsigned char kind, PyObject *convert, PyObject *dumps,
                        const Column *c) {
    const char *s = c->p;
    Py_ssize_t n = c->n;
    switch (kind) {
    case K_TEXT:
        return put_json_string(b, s, n, 0);
    case K_INT:
        if (n > 0 && canonical_int(s, n))
            return buf_put(b, s, n);
        break;
    case K_BOOL:
        if (n == 1 && s[0] == 't')
            return buf_put(b, "true", 4);
        return buf_put(b, "false", 5);
    case K_NUMERIC:
        if (n == 0 || (unsigned char)s[n - 1] >= 0x80)
            break; /* str.isdigit() knows other digits: the converter decides */
        if (is_digit(s[n - 1]))
            return buf_put(b, s, n);
        return put_json_string(b, s, n, 0);
    case K_FLOAT:
        if (n == 0 || (unsigned char)s[n - 1] >= 0x80 || memchr(s, 'e', (size_t)n) ||
            memchr(s, 'E', (size_t)n))
            break;
        if (!is_digit(s[n - 1]))
            return put_json_string(b, s, n, 0);
        if (s[0] == '-') {
            Py_ssize_t i = 0;
            while (i < n && (s[i] == '-' || s[i] == '0' || s[i] == '.'))
                i++;
            if (i == n) /* a negative zero loses its sign */
                return buf_put(b, s + 1, n - 1);
        }
        return buf_put(b, s, n);
    case K_JSONB:
        return buf_put(b, s, n);
    case K_TIMESTAMP:
        return put_json_string(b, s, n, 1);
    case K_TIMESTAMPTZ:
        if (n >= 3 && memcmp(s + n - 3, "+00", 3) == 0) {
            if (put_json_string(b, s, n, 1) < 0)
                return -1;
            b->len--; /* reopen the string for the offset's minutes */
            return buf_put(b, ":00\"", 4);
        }
        break;
    default:
        break;
    }
    return render_python(b, convert, dumps, c);
}

/* An array value by parse_array's fast form (one '{', no '"'): "{a,b,NULL}" -> each element
 * by the element kind's rule, NULL -> null; any other form by the array's converter. */
static int render_array(Buf *b, Layout *layout, Py_ssize_t column, PyObject *dumps,
                        const Column *c) {
    const char *s = c->p;
    Py_ssize_t n = c->n;
    if (n < 2 || s[0] != '{' || s[n - 1] != '}' || memchr(s, '"', (size_t)n) ||
        memchr(s + 1, '{', (size_t)(n - 1)))
        return render_python(b, PyTuple_GET_ITEM(layout->converters, column), dumps, c);
    if (buf_byte(b, '[') < 0)
        return -1;
    if (n > 2) {
        char delimiter = layout->delimiters[column];
        unsigned char kind = layout->element_kinds[column];
        PyObject *convert = PyTuple_GET_ITEM(layout->element_converters, column);
        const char *item = s + 1, *end = s + n - 1;
        for (;;) {
            const char *stop = memchr(item, delimiter, (size_t)(end - item));
            if (stop == NULL)
                stop = end;
            Column element = {'t', item, stop - item};
            int failed = element.n == 4 && memcmp(item, "NULL", 4) == 0
                             ? buf_put(b, "null", 4)
                             : render_value(b, kind, convert, dumps, &element);
            if (failed < 0)
                return -1;
            if (stop == end)
                break;
            if (buf_byte(b, ',') < 0)
                return -1;
            item = stop + 1;
        }
    }
    return buf_byte(b, ']');
}

/* Render every column of a tuple into ``scratch``; spans[i].start < 0 for 'u'. */
static int render_tuple(Buf *scratch, Layout *layout, PyObject *dumps, const Column *columns,
                        Span *spans) {
    for (Py_ssize_t i = 0; i < layout->ncols; i++) {
        const Column *c = &columns[i];
        spans[i].start = scratch->len;
        if (c->kind == 'u') {
            spans[i].start = -1;
        } else if (c->kind == 'n') {
            if (buf_put(scratch, "null", 4) < 0)
                return -1;
        } else if (layout->kinds[i] == K_ARRAY) {
            if (render_array(scratch, layout, i, dumps, c) < 0)
                return -1;
        } else if (render_value(scratch, layout->kinds[i],
                                PyTuple_GET_ITEM(layout->converters, i), dumps, c) < 0) {
            return -1;
        }
        spans[i].end = scratch->len;
    }
    return 0;
}

/* '"name":value' after a ',' unless it is the first member. */
static int put_member(Buf *out, PyObject *name_json, const char *value, Py_ssize_t n,
                      int *first) {
    if (!*first && buf_byte(out, ',') < 0)
        return -1;
    *first = 0;
    if (buf_put(out, PyBytes_AS_STRING(name_json), PyBytes_GET_SIZE(name_json)) < 0)
        return -1;
    return buf_put(out, value, n);
}

/* A column's member with its rendered value from the scratch buffer. */
static int put_column(Buf *out, PyObject *name_json, const Buf *scratch, const Span *span,
                      int *first) {
    return put_member(out, name_json, scratch->p + span->start, span->end - span->start, first);
}

static PyObject *finish_text(Buf *out) {
    return PyUnicode_DecodeUTF8(out->p, out->len, "strict");
}

/* The whole row in column order (columns with no span left out), as str. */
static PyObject *row_text(Layout *layout, const Buf *scratch, const Span *spans) {
    Buf out;
    buf_init(&out);
    int first = 1;
    PyObject *result = NULL;
    if (buf_byte(&out, '{') < 0)
        goto done;
    for (Py_ssize_t i = 0; i < layout->ncols; i++)
        if (spans[i].start >= 0 &&
            put_column(&out, PyTuple_GET_ITEM(layout->name_json, i), scratch, &spans[i],
                       &first) < 0)
            goto done;
    if (buf_byte(&out, '}') < 0)
        goto done;
    result = finish_text(&out);
done:
    buf_free(&out);
    return result;
}

/* The key columns, in key order: a missing one is null when ``nulls``, left out otherwise. */
static PyObject *key_text(Layout *layout, const Buf *scratch, const Span *spans, int nulls) {
    static const Span NONE = {-1, -1};
    Buf out;
    buf_init(&out);
    int first = 1;
    PyObject *result = NULL;
    if (buf_byte(&out, '{') < 0)
        goto done;
    for (Py_ssize_t k = 0; k < layout->nkeys; k++) {
        Py_ssize_t i = layout->key_positions[k];
        const Span *span = i >= 0 ? &spans[i] : &NONE;
        PyObject *name = PyTuple_GET_ITEM(layout->key_json, k);
        if (span->start >= 0) {
            if (put_column(&out, name, scratch, span, &first) < 0)
                goto done;
        } else if (nulls && put_member(&out, name, "null", 4, &first) < 0) {
            goto done;
        }
    }
    if (buf_byte(&out, '}') < 0)
        goto done;
    result = finish_text(&out);
done:
    buf_free(&out);
    return result;
}

/* Names of the columns with no span, in column order. */
static PyObject *unchanged_names(Layout *layout, const Span *spans) {
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < layout->ncols; i++)
        count += spans[i].start < 0;
    PyObject *names = PyTuple_New(count);
    if (names == NULL)
        return NULL;
    for (Py_ssize_t i = 0, j = 0; i < layout->ncols; i++)
        if (spans[i].start < 0)
            PyTuple_SET_ITEM(names, j++, Py_NewRef(PyTuple_GET_ITEM(layout->names, i)));
    return names;
}

/* ---------------------------------------------------------------------------------------- */
/* Rows: the object the stream calls once per XLogData message.                              */

typedef struct {
    PyObject_HEAD
    PyObject *relations; /* dict oid -> RelationInfo, shared with the decoder */
    PyObject *layouts;   /* dict oid -> Layout, kept by the assembler */
    PyTypeObject *change_type;
    PyObject *dumps;
} Rows;

static PyObject *OP_INSERT, *OP_UPDATE, *OP_DELETE;

static void rows_dealloc(Rows *self) {
    Py_XDECREF(self->relations);
    Py_XDECREF(self->layouts);
    Py_XDECREF(self->change_type);
    Py_XDECREF(self->dumps);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int rows_init(Rows *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"relations", "layouts", "change_type", "dumps", NULL};
    PyObject *relations, *layouts, *change_type, *dumps;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O", kwlist, &PyDict_Type, &relations,
                                     &PyDict_Type, &layouts, &PyType_Type, &change_type, &dumps))
        return -1;
    if (!PyType_IsSubtype((PyTypeObject *)change_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "change_type must be a tuple subclass (a NamedTuple)");
        return -1;
    }
    Py_XSETREF(self->relations, Py_NewRef(relations));
    Py_XSETREF(self->layouts, Py_NewRef(layouts));
    Py_XSETREF(self->change_type, (PyTypeObject *)Py_NewRef(change_type));
    Py_XSETREF(self->dumps, Py_NewRef(dumps));
    return 0;
}

/* Change(op, schema, table, new, old, key, unchanged_toast, None); steals the references. */
static PyObject *make_change(Rows *self, Layout *layout, PyObject *op, PyObject *new,
                             PyObject *old, PyObject *key, PyObject *unchanged) {
    PyObject *change = NULL;
    if (new != NULL && old != NULL && key != NULL && unchanged != NULL)
        change = self->change_type->tp_alloc(self->change_type, 8);
    if (change == NULL) {
        Py_XDECREF(new);
        Py_XDECREF(old);
        Py_XDECREF(key);
        Py_XDECREF(unchanged);
        return NULL;
    }
    PyTuple_SET_ITEM(change, 0, Py_NewRef(op));
    PyTuple_SET_ITEM(change, 1, Py_NewRef(layout->schema));
    PyTuple_SET_ITEM(change, 2, Py_NewRef(layout->table));
    PyTuple_SET_ITEM(change, 3, new);
    PyTuple_SET_ITEM(change, 4, old);
    PyTuple_SET_ITEM(change, 5, key);
    PyTuple_SET_ITEM(change, 6, unchanged);
    PyTuple_SET_ITEM(change, 7, Py_NewRef(Py_None));
    return change;
}

/* The key of a rendered row; None for a relation without key columns. */
static PyObject *maybe_key(Layout *layout, const Buf *scratch, const Span *spans) {
    return layout->nkeys ? key_text(layout, scratch, spans, 1) : Py_NewRef(Py_None);
}

/* The old row as the assembler's _old_row gives it: the key columns present ('K') or the whole
 * row ('O'). */
static PyObject *old_text(Layout *layout, char key_type, const Buf *scratch, const Span *spans) {
    return key_type == 'K' ? key_text(layout, scratch, spans, 0) : row_text(layout, scratch, spans);
}

static PyObject *render_change(Rows *self, Layout *layout, char op, char key_type,
                               const Column *old_columns, const Column *new_columns,
                               Buf *scratch, Span *old_spans, Span *new_spans) {
    if (old_columns != NULL && render_tuple(scratch, layout, self->dumps, old_columns,
                                            old_spans) < 0)
        return NULL;
    if (op == 'D') {
        /* a Delete always has its old tuple; its key is _key(old, keys) */
        PyObject *old = old_text(layout, key_type, scratch, old_spans);
        PyObject *key = old ? maybe_key(layout, scratch, old_spans) : NULL;
        return make_change(self, layout, OP_DELETE, Py_NewRef(Py_None), old, key,
                           PyTuple_New(0));
    }
    if (render_tuple(scratch, layout, self->dumps, new_columns, new_spans) < 0)
        return NULL;
    if (op == 'U' && key_type == 'O') {
        /* unchanged TOAST columns of the new row come from the whole old row when it has them */
        for (Py_ssize_t i = 0; i < layout->ncols; i++)
            if (new_spans[i].start < 0)
                new_spans[i] = old_spans[i];
    }
    PyObject *new = row_text(layout, scratch, new_spans);
    PyObject *old =
        old_columns ? old_text(layout, key_type, scratch, old_spans) : Py_NewRef(Py_None);
    PyObject *key = maybe_key(layout, scratch, new_spans);
    PyObject *unchanged = unchanged_names(layout, new_spans);
    return make_change(self, layout, op == 'I' ? OP_INSERT : OP_UPDATE, new, old, key, unchanged);
}

/* The (xid, Change) of the row change message at ``offset`` of data[0:end]; Py_None when
 * declined; NULL with an exception set. */
static PyObject *change_of(Rows *self, const char *data, Py_ssize_t end, Py_ssize_t offset,
                           int in_stream) {
    PyObject *result = NULL;
    Column local_columns[2 * 32];
    Span local_spans[2 * 32];
    Column *columns = local_columns;
    Span *spans = local_spans;
    Buf scratch;
    buf_init(&scratch);

    if (offset < 0 || offset >= end)
        goto decline;
    char op = data[offset];
    if (op != 'I' && op != 'U' && op != 'D')
        goto decline;
    Py_ssize_t pos = offset + 1;
    uint32_t xid = 0;
    if (in_stream) {
        if (end - pos < 4)
            goto decline;
        xid = read_u32(data + pos);
        pos += 4;
    }
    if (end - pos < 5)
        goto decline;
    PyObject *oid = PyLong_FromUnsignedLong(read_u32(data + pos));
    if (oid == NULL)
        goto fail;
    char marker = data[pos + 4];
    pos += 5;
    PyObject *layout_object = PyDict_GetItemWithError(self->layouts, oid);
    PyObject *relation = layout_object ? PyDict_GetItemWithError(self->relations, oid) : NULL;
    Py_DECREF(oid);
    if (PyErr_Occurred())
        goto fail;
    if (layout_object == NULL || Py_TYPE(layout_object) != &LayoutType)
        goto decline;
    Layout *layout = (Layout *)layout_object;
    if (relation != layout->relation)
        goto decline; /* announced again since the layout was built */
    Py_ssize_t ncols = layout->ncols;
    if (ncols > 32) {
        columns = PyMem_Malloc(sizeof(Column) * 2 * (size_t)ncols);
        spans = PyMem_Malloc(sizeof(Span) * 2 * (size_t)ncols);
        if (columns == NULL || spans == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
    }
    Column *old_columns = NULL, *new_columns = NULL;
    char key_type = 0;
    if (op == 'I') {
        if (marker != 'N')
            goto decline;
        new_columns = columns + ncols;
    } else if (op == 'D') {
        if (marker != 'K' && marker != 'O')
            goto decline;
        key_type = marker;
        old_columns = columns;
    } else if (marker == 'K' || marker == 'O') {
        key_type = marker;
        old_columns = columns;
        if (!parse_tuple(data, end, &pos, ncols, old_columns))
            goto decline;
        if (pos >= end || data[pos] != 'N')
            goto decline;
        pos++;
        new_columns = columns + ncols;
    } else if (marker == 'N') {
        new_columns = columns + ncols;
    } else {
        goto decline;
    }
    if (op == 'D') {
        if (!parse_tuple(data, end, &pos, ncols, old_columns))
            goto decline;
    } else if (!parse_tuple(data, end, &pos, ncols, new_columns)) {
        goto decline;
    }
    if (pos != end)
        goto decline;
    PyObject *change = render_change(self, layout, op, key_type, old_columns, new_columns,
                                     &scratch, spans, spans + ncols);
    if (change == NULL)
        goto fail;
    /* "N": the references are the tuple's (and dropped with the other when one is NULL) */
    result = Py_BuildValue("(NN)", in_stream ? PyLong_FromUnsignedLong(xid) : Py_NewRef(Py_None),
                           change);
    goto done;
decline:
    result = Py_NewRef(Py_None);
    goto done;
fail:
    result = NULL;
done:
    if (columns != local_columns)
        PyMem_Free(columns);
    if (spans != local_spans)
        PyMem_Free(spans);
    buf_free(&scratch);
    return result;
}

static PyObject *rows_change(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "change(data, offset, in_stream)");
        return NULL;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    if (offset == -1 && PyErr_Occurred())
        return NULL;
    int in_stream = PyObject_IsTrue(args[2]);
    if (in_stream < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *result = change_of(self, view.buf, view.len, offset, in_stream);
    PyBuffer_Release(&view);
    return result;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading: the stream loop's per-message work, straight from libpq's buffers.               */

/* libpq's PQgetCopyData and PQfreemem, from the libpq psycopg runs on (native.py finds them). */
static int (*get_copy_data)(void *conn, char **buffer, int async);
static void (*free_copy_data)(void *buffer);

static PyObject *use_libpq(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "use_libpq(PQgetCopyData, PQfreemem): two addresses");
        return NULL;
    }
    void *copy = PyLong_AsVoidPtr(args[0]), *free = PyLong_AsVoidPtr(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (copy == NULL || free == NULL) {
        PyErr_SetString(PyExc_ValueError, "use_libpq: an address is NULL");
        return NULL;
    }
    get_copy_data = (int (*)(void *, char **, int))copy;
    free_copy_data = (void (*)(void *))free;
    Py_RETURN_NONE;
}

#define XLOGDATA_HEADER 25 /* 'w', start LSN, end LSN, send time */

/* read(pgconn, limit, in_stream) -> (rows, other, received, wal_end, size, ended) */
static PyObject *rows_read(Rows *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "read(pgconn_ptr, limit, in_stream)");
        return NULL;
    }
    if (get_copy_data == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "read: use_libpq() was not called");
        return NULL;
    }
    void *conn = PyLong_AsVoidPtr(args[0]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[1]);
    int in_stream = PyObject_IsTrue(args[2]);
    if (PyErr_Occurred() || in_stream < 0)
        return NULL;
    if (conn == NULL) {
        PyErr_SetString(PyExc_ValueError, "read: no connection");
        return NULL;
    }
    PyObject *rows = PyList_New(0), *other = Py_NewRef(Py_None);
    if (rows == NULL)
        return NULL;
    uint64_t received = 0, wal_end = 0;
    Py_ssize_t size = 0;
    int ended = 0;
    while (PyList_GET_SIZE(rows) < limit) {
        char *buffer = NULL;
        int n = get_copy_data(conn, &buffer, 1);
        if (n <= 0) {
            ended = n; /* 0: nothing more for now; -1: the COPY ended; -2: an error */
            break;
        }
        PyObject *row = NULL; /* stays NULL for a message the Python loop handles */
        int failed = 0;
        if (n > XLOGDATA_HEADER && buffer[0] == 'w') {
            char op = buffer[XLOGDATA_HEADER];
            if (op == 'I' || op == 'U' || op == 'D') {
                row = change_of(self, buffer, n, XLOGDATA_HEADER, in_stream);
                failed = row == NULL;
                if (row == Py_None)
                    Py_CLEAR(row); /* declined: the Python decoder reads it */
            }
        }
        if (row == NULL) {
            /* a message for the Python loop ends the batch: it may announce a relation or
             * open a stream that the next rows depend on */
            if (!failed)
                Py_SETREF(other, PyBytes_FromStringAndSize(buffer, n));
            free_copy_data(buffer);
            if (failed || other == NULL)
                goto error;
            break;
        }
        uint64_t start = read_u64(buffer + 1);
        if (start > received)
            received = start;
        wal_end = read_u64(buffer + 9);
        size += n;
        free_copy_data(buffer);
        failed = PyList_Append(rows, row) < 0;
        Py_DECREF(row);
        if (failed)
            goto error;
    }
    return Py_BuildValue("(NNKKni)", rows, other, (unsigned long long)received,
                         (unsigned long long)wal_end, size, ended);
error:
    Py_DECREF(rows);
    Py_XDECREF(other);
    return NULL;
}

static PyMethodDef rows_methods[] = {
    {"read", (PyCFunction)(void (*)(void))rows_read, METH_FASTCALL,
     "read(pgconn_ptr, limit, in_stream) -> (rows, other, received, wal_end, size, ended)"
     "\n\nWhat libpq already holds of the stream (it never waits): the (xid, Change) of each "
     "row change message in order, up to ``limit``, then, when one came, the first other "
     "message (``other``, its bytes: the Python loop handles it and calls again). received: "
     "the highest XLogData start LSN of the rows, wal_end the last one's end, size their "
     "messages' bytes; ended: what PQgetCopyData said last (0 nothing more for now, "
     "-1 the COPY ended, -2 an error)."},
    {"change", (PyCFunction)(void (*)(void))rows_change, METH_FASTCALL,
     "change(data, offset, in_stream) -> (xid, Change) | None\n\n"
     "The Change of the Insert, Update or Delete message at ``offset`` of ``data`` (xid: None "
     "outside a stream), or None when the Python path must decode it."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RowsType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "wal2http_tui._native.Rows",
    .tp_basicsize = sizeof(Rows),
    .tp_dealloc = (destructor)rows_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Renders row change messages of the relations it has layouts for.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rows_init,
    .tp_methods = rows_methods,
};

int rows_register(PyObject *m) {
    if (PyType_Ready(&LayoutType) < 0 || PyType_Ready(&RowsType) < 0)
        return -1;
    OP_INSERT = PyUnicode_InternFromString("insert");
    OP_UPDATE = PyUnicode_InternFromString("update");
    OP_DELETE = PyUnicode_InternFromString("delete");
    if (OP_INSERT == NULL || OP_UPDATE == NULL || OP_DELETE == NULL)
        return -1;
    static const struct {
        const char *name;
        int value;
    } kinds[] = {
        {"TEXT", K_TEXT},           {"INT", K_INT},
        {"BOOL", K_BOOL},           {"NUMERIC", K_NUMERIC},
        {"FLOAT", K_FLOAT},         {"JSONB", K_JSONB},
        {"TIMESTAMP", K_TIMESTAMP}, {"TIMESTAMPTZ", K_TIMESTAMPTZ},
        {"PYTHON", K_PYTHON},       {"ARRAY", K_ARRAY},
        {"KIND_COUNT", K_COUNT},
    };
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (PyModule_AddIntConstant(m, kinds[i].name, kinds[i].value) < 0)
            return -1;
    static PyMethodDef functions[] = {
        {"use_libpq", (PyCFunction)(void (*)(void))use_libpq, METH_FASTCALL,
         "use_libpq(PQgetCopyData, PQfreemem): the addresses of libpq's functions Rows.read "
         "calls (those of the libpq psycopg runs on)"},
        {NULL, NULL, 0, NULL},
    };
    if (PyModule_AddFunctions(m, functions) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Layout", (PyObject *)&LayoutType) < 0 ||
        PyModule_AddObjectRef(m, "Rows", (PyObject *)&RowsType) < 0)
        return -1;
    return 0;
}
