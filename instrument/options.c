/* MODLIFE_OPTIONS parser (see options.h). */
#include "options.h"

#include "visible_text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ml_options ml_opts;

void ml_options_defaults(struct ml_options *o)
{
    memset(o, 0, sizeof *o);
#define ML_OPTION_STRING(name, size, default, metavar, help) snprintf(o->name, sizeof o->name, "%s", default);
#define ML_OPTION_INT(name, default, min, max, metavar, help) o->name = default;
#define ML_OPTION_BOOL(name, default, help) o->name = default;
#include "options.def"
}

enum opt_type { OPT_STRING, OPT_INT, OPT_BOOL };

struct opt_spec {
    const char *name;
    enum opt_type type;
    size_t offset;
    size_t size; /* strings: buffer size */
    int min, max;
};

static const struct opt_spec specs[] = {
#define ML_OPTION_STRING(name, size, default, metavar, help) \
    {#name, OPT_STRING, offsetof(struct ml_options, name), sizeof(((struct ml_options *)0)->name), 0, 0},
#define ML_OPTION_INT(name, default, min, max, metavar, help) \
    {#name, OPT_INT, offsetof(struct ml_options, name), 0, min, max},
#define ML_OPTION_BOOL(name, default, help) {#name, OPT_BOOL, offsetof(struct ml_options, name), 0, 0, 1},
#include "options.def"
};

/* The name is put in a sockaddr and printed in messages: a plain word. */
static int check_notify(const char *value, size_t len, char *err, size_t err_size)
{
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-')) {
            snprintf(err, err_size, "notify=%s: expected a socket name of letters, digits, '.', '_' and '-'",
                     ml_visible(value, len).text);
            return -1;
        }
    }
    return 0;
}

static void known_list(char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof specs / sizeof specs[0] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", specs[i].name);
}

static int set_value(struct ml_options *o, const struct opt_spec *s, const char *value,
                     size_t len, char *err, size_t err_size)
{
    char *field = (char *)o + s->offset;
    if (s->type == OPT_STRING) {
        if (field == o->python_frames && !(len == 3 && (!memcmp(value, "app", 3) || !memcmp(value, "all", 3)))) {
            snprintf(err, err_size, "python_frames=%s: expected app or all", ml_visible(value, len).text);
            return -1;
        }
        if (len >= s->size) {
            snprintf(err, err_size, "%s is too long (at most %zu characters)", s->name, s->size - 1);
            return -1;
        }
        if (field == o->notify && check_notify(value, len, err, err_size) != 0)
            return -1;
        memcpy(field, value, len);
        field[len] = '\0';
        return 0;
    }
    char text[32];
    if (len == 0 || len >= sizeof text)
        goto bad;
    memcpy(text, value, len);
    text[len] = '\0';
    if (s->type == OPT_BOOL) {
        if (!strcmp(text, "1") || !strcmp(text, "true") || !strcmp(text, "yes"))
            *(int *)field = 1;
        else if (!strcmp(text, "0") || !strcmp(text, "false") || !strcmp(text, "no"))
            *(int *)field = 0;
        else
            goto bad;
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || *end || v < s->min || v > s->max)
        goto bad;
    *(int *)field = (int)v;
    return 0;
bad:
    if (s->type == OPT_BOOL)
        snprintf(err, err_size, "%s=%s: expected 0 or 1", s->name, ml_visible(value, len).text);
    else
        snprintf(err, err_size, "%s=%s: expected an integer from %d to %d", s->name, ml_visible(value, len).text,
                 s->min, s->max);
    return -1;
}

static int parse_pair(struct ml_options *o, const char *pair, size_t len, char *err, size_t err_size)
{
    const char *eq = memchr(pair, '=', len);
    if (!eq || eq == pair) {
        snprintf(err, err_size, "expected key=value, got '%s'", ml_visible(pair, len).text);
        return -1;
    }
    size_t key_len = (size_t)(eq - pair);
    const char *value = eq + 1;
    size_t value_len = len - key_len - 1;
    if (value_len >= 2 && (value[0] == '"' || value[0] == '\'') && value[value_len - 1] == value[0]) {
        value++;
        value_len -= 2;
    }
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
        if (strlen(specs[i].name) == key_len && !memcmp(specs[i].name, pair, key_len))
            return set_value(o, &specs[i], value, value_len, err, err_size);
    char known[512];
    known_list(known, sizeof known);
    snprintf(err, err_size, "unknown option '%s' (known: %s; see libmodlife(7))", ml_visible(pair, key_len).text, known);
    return -1;
}

int ml_options_parse(struct ml_options *o, const char *text, char *err, size_t err_size)
{
    if (!text)
        return 0;
    const char *p = text;
    while (*p) {
        /* A quoted value may contain ':'. */
        const char *q = p;
        char quote = 0;
        while (*q && (quote || *q != ':')) {
            if (!quote && (*q == '"' || *q == '\'') && q > p && q[-1] == '=')
                quote = *q;
            else if (quote && *q == quote)
                quote = 0;
            q++;
        }
        if (quote) {
            snprintf(err, err_size, "unterminated quote in '%s'", ml_visible(p, strlen(p)).text);
            return -1;
        }
        if (q > p && parse_pair(o, p, (size_t)(q - p), err, err_size) != 0)
            return -1;
        p = *q ? q + 1 : q;
    }
    return 0;
}
