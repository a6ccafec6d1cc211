/* JSON writer (see json_writer.h). */
#include "json_writer.h"

#include "utf8.h"

#include <string.h>

void json_init(struct json *j, char *buf, size_t cap)
{
    j->buf = buf;
    j->len = 0;
    j->cap = cap;
    j->overflow = 0;
}

size_t json_room(const struct json *j)
{
    return j->cap - j->len;
}

/* Every record of the log is built here, a few bytes at a time: the small steps are
 * inline, and a key is one copy. */
static inline int room(struct json *j, size_t n)
{
    if (j->overflow || n > j->cap - j->len) {
        j->overflow = 1;
        return 0;
    }
    return 1;
}

static inline void put(struct json *j, const char *s, size_t n)
{
    if (!room(j, n))
        return;
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static inline void put_char(struct json *j, char c)
{
    if (room(j, 1))
        j->buf[j->len++] = c;
}

static inline void separate(struct json *j)
{
    if (j->len == 0)
        return;
    char last = j->buf[j->len - 1];
    if (last != '{' && last != '[' && last != ':')
        put_char(j, ',');
}

void json_begin_object(struct json *j) { separate(j); put_char(j, '{'); }
void json_end_object(struct json *j) { put_char(j, '}'); }
void json_begin_array(struct json *j) { separate(j); put_char(j, '['); }
void json_end_array(struct json *j) { put_char(j, ']'); }

/* 1 for the bytes JSON strings must escape (quote, backslash, control characters,
 * and DEL, which some readers choke on). */
static const unsigned char escaped[256] = {
    [0x00] = 1, [0x01] = 1, [0x02] = 1, [0x03] = 1, [0x04] = 1, [0x05] = 1, [0x06] = 1, [0x07] = 1,
    [0x08] = 1, [0x09] = 1, [0x0a] = 1, [0x0b] = 1, [0x0c] = 1, [0x0d] = 1, [0x0e] = 1, [0x0f] = 1,
    [0x10] = 1, [0x11] = 1, [0x12] = 1, [0x13] = 1, [0x14] = 1, [0x15] = 1, [0x16] = 1, [0x17] = 1,
    [0x18] = 1, [0x19] = 1, [0x1a] = 1, [0x1b] = 1, [0x1c] = 1, [0x1d] = 1, [0x1e] = 1, [0x1f] = 1,
    ['"'] = 1,  ['\\'] = 1, [0x7f] = 1,
};

static void put_u(struct json *j, uint32_t cp)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', hex[cp >> 12 & 15], hex[cp >> 8 & 15], hex[cp >> 4 & 15], hex[cp & 15]};
    put(j, e, 6);
}

/* Names and paths rarely hold anything to escape: runs of plain bytes are copied
 * whole (every frame of every stack comes through here).  Names are C strings
 * that CPython need not have decoded (PyModuleDef.m_name): a byte that is not
 * UTF-8 is written as U+FFFD, so the log is UTF-8 for every reader, and invisible
 * code points (C1 controls, U+2028...) are escaped, so that the log is safe to
 * show on a terminal and to embed in a script. */
static void put_escaped(struct json *j, const char *s, size_t n)
{
    put_char(j, '"');
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t len = ml_utf8_next((const unsigned char *)s + i, n - i, &cp);
            if (len && !ml_utf8_invisible(cp)) {
                i += len;
                continue;
            }
            put(j, s + run, i - run);
            put_u(j, len ? cp : 0xfffd);
            i += len ? len : 1;
            run = i;
            continue;
        }
        if (!escaped[c]) {
            i++;
            continue;
        }
        put(j, s + run, i - run);
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(j, e, 2);
        } else {
            put_u(j, c);
        }
        run = ++i;
    }
    put(j, s + run, n - run);
    put_char(j, '"');
}

/* Keys are the library's own literals: nothing in them to escape. */
void json_key(struct json *j, const char *key)
{
    separate(j);
    size_t n = strlen(key);
    if (!room(j, n + 3))
        return;
    char *at = j->buf + j->len;
    at[0] = '"';
    memcpy(at + 1, key, n);
    at[n + 1] = '"';
    at[n + 2] = ':';
    j->len += n + 3;
}

void json_string_n(struct json *j, const char *s, size_t n)
{
    separate(j);
    put_escaped(j, s, n);
}

void json_string(struct json *j, const char *s)
{
    if (!s) {
        json_null(j);
        return;
    }
    json_string_n(j, s, strlen(s));
}

/* Two digits a step: times and ids are most of every record's numbers. */
static const char digit_pairs[] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                  "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                  "8081828384858687888990919293949596979899";

size_t json_decimal(char buf[JSON_DECIMAL_MAX], long long v)
{
    int i = JSON_DECIMAL_MAX;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100) * 2;
        u /= 100;
        buf[--i] = digit_pairs[pair + 1];
        buf[--i] = digit_pairs[pair];
    }
    if (u >= 10) {
        buf[--i] = digit_pairs[u * 2 + 1];
        buf[--i] = digit_pairs[u * 2];
    } else {
        buf[--i] = (char)('0' + u);
    }
    if (v < 0)
        buf[--i] = '-';
    return (size_t)(JSON_DECIMAL_MAX - i);
}

void json_int(struct json *j, long long v)
{
    char tmp[JSON_DECIMAL_MAX];
    size_t n = json_decimal(tmp, v);
    separate(j);
    put(j, tmp + sizeof tmp - n, n);
}

void json_hex(struct json *j, uintptr_t v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[2 + 2 * sizeof v + 2];
    int i = (int)sizeof tmp;
    tmp[--i] = '"';
    do {
        tmp[--i] = hex[v & 15];
        v >>= 4;
    } while (v);
    tmp[--i] = 'x';
    tmp[--i] = '0';
    tmp[--i] = '"';
    separate(j);
    put(j, tmp + i, sizeof tmp - (size_t)i);
}

void json_bool(struct json *j, int v)
{
    separate(j);
    put(j, v ? "true" : "false", v ? 4 : 5);
}

void json_null(struct json *j)
{
    separate(j);
    put(j, "null", 4);
}

void json_kv_string(struct json *j, const char *key, const char *s) { json_key(j, key); json_string(j, s); }
void json_kv_int(struct json *j, const char *key, long long v) { json_key(j, key); json_int(j, v); }
void json_kv_hex(struct json *j, const char *key, uintptr_t v) { json_key(j, key); json_hex(j, v); }
void json_kv_bool(struct json *j, const char *key, int v) { json_key(j, key); json_bool(j, v); }
