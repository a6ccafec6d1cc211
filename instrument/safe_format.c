/* Async-signal-safe formatting (see safe_format.h). */
#include "safe_format.h"

#include <stdint.h>

struct sink {
    char *buf;
    size_t size, len;
};

static void put_char(struct sink *s, char c)
{
    if (s->len + 1 < s->size)
        s->buf[s->len++] = c;
}

static void put_text(struct sink *s, const char *text, size_t max)
{
    for (size_t i = 0; i < max && text[i]; i++)
        put_char(s, text[i]);
}

static void put_unsigned(struct sink *s, unsigned long long v, unsigned base)
{
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put_char(s, digits[--n]);
}

static void put_signed(struct sink *s, long long v)
{
    if (v < 0) {
        put_char(s, '-');
        put_unsigned(s, 0ULL - (unsigned long long)v, 10);
    } else {
        put_unsigned(s, (unsigned long long)v, 10);
    }
}

enum size_mod { MOD_INT, MOD_LONG, MOD_LLONG, MOD_SIZE };

static void put_number(struct sink *s, char conv, enum size_mod mod, va_list *ap)
{
    if (conv == 'd' || conv == 'i') {
        long long v = mod == MOD_LLONG ? va_arg(*ap, long long)
                      : mod == MOD_LONG ? va_arg(*ap, long)
                      : mod == MOD_SIZE ? (long long)va_arg(*ap, size_t)
                                        : va_arg(*ap, int);
        put_signed(s, v);
        return;
    }
    unsigned long long v = mod == MOD_LLONG ? va_arg(*ap, unsigned long long)
                           : mod == MOD_LONG ? va_arg(*ap, unsigned long)
                           : mod == MOD_SIZE ? va_arg(*ap, size_t)
                                             : va_arg(*ap, unsigned);
    put_unsigned(s, v, conv == 'x' ? 16 : 10);
}

size_t ml_vformat(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct sink s = {buf, size, 0};
    va_list args;
    va_copy(args, ap);
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put_char(&s, *p);
            continue;
        }
        p++;
        size_t precision = SIZE_MAX;
        if (p[0] == '.' && p[1] == '*') {
            int n = va_arg(args, int);
            precision = n < 0 ? SIZE_MAX : (size_t)n;
            p += 2;
        }
        enum size_mod mod = MOD_INT;
        if (p[0] == 'l' && p[1] == 'l') {
            mod = MOD_LLONG;
            p += 2;
        } else if (*p == 'l') {
            mod = MOD_LONG;
            p++;
        } else if (*p == 'z') {
            mod = MOD_SIZE;
            p++;
        }
        switch (*p) {
        case 's': {
            const char *text = va_arg(args, const char *);
            put_text(&s, text ? text : "(null)", precision);
            break;
        }
        case 'c':
            put_char(&s, (char)va_arg(args, int));
            break;
        case 'p':
            put_text(&s, "0x", 2);
            put_unsigned(&s, (uintptr_t)va_arg(args, void *), 16);
            break;
        case 'd': case 'i': case 'u': case 'x':
            put_number(&s, *p, mod, &args);
            break;
        case '%':
            put_char(&s, '%');
            break;
        default: /* unsupported: shown, not guessed */
            put_char(&s, '%');
            if (*p)
                put_char(&s, *p);
            else
                p--;
        }
    }
    va_end(args);
    if (size)
        buf[s.len] = '\0';
    return s.len;
}

size_t ml_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t n = ml_vformat(buf, size, fmt, ap);
    va_end(ap);
    return n;
}
