/* User text for error messages and reports (see visible_text.h). */
#include "visible_text.h"

#include "utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct ml_visible ml_visible(const char *s, size_t len)
{
    struct ml_visible v;
    size_t out = 0;
    for (size_t i = 0; i < len && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f)
            v.text[out++] = (char)c;
        else
            out += (size_t)snprintf(v.text + out, sizeof v.text - out, "\\x%02x", c);
    }
    if (len > 64)
        out += (size_t)snprintf(v.text + out, sizeof v.text - out, "...");
    v.text[out] = '\0';
    return v;
}

/* e[0..n) at out + *at, if it fits before the NUL. */
static int emit(char *out, size_t cap, size_t *at, const char *e, size_t n)
{
    if (n >= cap - *at)
        return 0;
    memcpy(out + *at, e, n);
    *at += n;
    return 1;
}

static size_t hex_escape(char e[8], char kind, uint32_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    e[0] = '\\';
    e[1] = kind;
    for (int i = 0; i < digits; i++)
        e[2 + i] = hex[v >> (4 * (digits - 1 - i)) & 15];
    return 2 + (size_t)digits;
}

/* No stdio: reports are also made in the fatal-signal handler. */
size_t ml_terminal_text(char *out, size_t cap, const char *s, size_t len)
{
    size_t at = 0;
    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len;) {
        const unsigned char *u = (const unsigned char *)s + i;
        uint32_t cp;
        size_t n = ml_utf8_next(u, len - i, &cp), size = n;
        char e[8];
        if (n == 1 && cp == '\\') {
            e[0] = e[1] = '\\';
            size = 2;
        } else if (n == 0 || (n == 1 && (cp < 0x20 || cp == 0x7f))) {
            size = hex_escape(e, 'x', *u, 2);
        } else if (ml_utf8_invisible(cp)) {
            size = hex_escape(e, 'u', cp, 4);
        } else {
            memcpy(e, u, n);
        }
        if (!emit(out, cap, &at, e, size))
            break;
        i += n ? n : 1;
    }
    out[at] = '\0';
    return at;
}
