/* A JSON writer into a caller's fixed buffer: no allocation, so it can build a log
 * record anywhere, including from the crash handler.  Separators are inserted from
 * the last byte written, so callers only say what they write. */
#ifndef MODLIFE_JSON_WRITER_H
#define MODLIFE_JSON_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct json {
    char *buf;
    size_t len, cap;
    int overflow; /* set when something did not fit; the text stays valid up to len */
};

void json_init(struct json *j, char *buf, size_t cap);
size_t json_room(const struct json *j);
void json_begin_object(struct json *j);
void json_end_object(struct json *j);
void json_begin_array(struct json *j);
void json_end_array(struct json *j);
void json_key(struct json *j, const char *key); /* a literal: written unescaped */
void json_string(struct json *j, const char *s); /* NULL writes null */
void json_string_n(struct json *j, const char *s, size_t n);
void json_int(struct json *j, long long v);
/* v in decimal at the end of buf (no separator, no JSON around it): returns how
 * many characters, which end the buffer.  For other text built from numbers. */
#define JSON_DECIMAL_MAX 24
size_t json_decimal(char buf[JSON_DECIMAL_MAX], long long v);
void json_hex(struct json *j, uintptr_t v); /* as a "0x..." string */
void json_bool(struct json *j, int v);
void json_null(struct json *j);

/* Shorthands for "key": value members. */
void json_kv_string(struct json *j, const char *key, const char *s);
void json_kv_int(struct json *j, const char *key, long long v);
void json_kv_hex(struct json *j, const char *key, uintptr_t v);
void json_kv_bool(struct json *j, const char *key, int v);

#endif
