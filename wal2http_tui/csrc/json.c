/* JSON strings as orjson writes them, and UTF-8 as strict as Python's decoder. */
#include "native.h"

/* 1 when ``s`` is UTF-8 Python decodes (no surrogates, overlong forms or > U+10FFFF). */
int utf8_valid(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (i + 2 >= n)
                return 0;
            unsigned char c1 = s[i + 1];
            if (c == 0xE0 && (c1 < 0xA0 || c1 > 0xBF))
                return 0;
            if (c == 0xED && (c1 < 0x80 || c1 > 0x9F))
                return 0;
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80)
                return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (i + 3 >= n)
                return 0;
            unsigned char c1 = s[i + 1];
            if (c == 0xF0 && (c1 < 0x90 || c1 > 0xBF))
                return 0;
            if (c == 0xF4 && (c1 < 0x80 || c1 > 0x8F))
                return 0;
            if ((c1 & 0xC0) != 0x80 || (s[i + 2] & 0xC0) != 0x80 || (s[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char HEX[] = "0123456789abcdef";

int put_json_string(Buf *b, const char *s, Py_ssize_t n, int replace_space) {
    if (buf_reserve(b, n + 2) < 0)
        return -1;
    b->p[b->len++] = '"';
    Py_ssize_t run = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && !(c == ' ' && replace_space))
            continue;
        if (buf_put(b, s + run, i - run) < 0)
            return -1;
        run = i + 1;
        char esc[6];
        Py_ssize_t len = 2;
        esc[0] = '\\';
        switch (c) {
        case ' ':
            esc[0] = 'T';
            len = 1;
            replace_space = 0;
            break;
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\t': esc[1] = 't'; break;
        case '\n': esc[1] = 'n'; break;
        case '\f': esc[1] = 'f'; break;
        case '\r': esc[1] = 'r'; break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = HEX[c >> 4];
            esc[5] = HEX[c & 15];
            len = 6;
        }
        if (buf_put(b, esc, len) < 0)
            return -1;
    }
    if (buf_put(b, s + run, n - run) < 0)
        return -1;
    return buf_byte(b, '"');
}

