/* JSON writer (see json_writer.h). */
#include "json_writer.h"

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

static void put(struct json *j, const char *s, size_t n)
{
    if (j->overflow || n > j->cap - j->len) {
        j->overflow = 1;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

static void separate(struct json *j)
{
    if (j->len == 0)
        return;
    char last = j->buf[j->len - 1];
    if (last != '{' && last != '[' && last != ':')
        put(j, ",", 1);
}

void json_begin_object(struct json *j) { separate(j); put(j, "{", 1); }
void json_end_object(struct json *j) { put(j, "}", 1); }
void json_begin_array(struct json *j) { separate(j); put(j, "[", 1); }
void json_end_array(struct json *j) { put(j, "]", 1); }

static int needs_escape(unsigned char c)
{
    return c == '"' || c == '\\' || c < 0x20 || c == 0x7f;
}

/* Names and paths rarely hold anything to escape: runs of plain bytes are copied
 * whole (every frame of every stack comes through here). */
static void put_escaped(struct json *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    put(j, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape(c))
            continue;
        put(j, s + run, i - run);
        run = i + 1;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(j, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            put(j, e, 6);
        }
    }
    put(j, s + run, n - run);
    put(j, "\"", 1);
}

/* Keys are the library's own literals: nothing in them to escape. */
void json_key(struct json *j, const char *key)
{
    separate(j);
    put(j, "\"", 1);
    put(j, key, strlen(key));
    put(j, "\":", 2);
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

void json_int(struct json *j, long long v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        tmp[--i] = '-';
    separate(j);
    put(j, tmp + i, sizeof tmp - (size_t)i);
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
