/* UTF-8 as the JSON log and the terminal report need it: names come from C
 * strings (PyModuleDef.m_name is never decoded by CPython) and may hold any byte. */
#ifndef MODLIFE_UTF8_H
#define MODLIFE_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The length of the well-formed UTF-8 sequence at s (at most n bytes), its code
 * point in *cp; 0 when s does not start one (a stray continuation byte, a cut or
 * overlong sequence, a surrogate, beyond U+10FFFF), as Python's strict decoder
 * sees it (Unicode 15, table 3-7). */
static inline size_t ml_utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        *cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        *cp = c & 0x0f;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        *cp = c & 0x07;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    return len;
}

/* Code points that move the cursor or reorder text without being seen: C1
 * controls, the line and paragraph separators, bidirectional formatting. */
static inline int ml_utf8_invisible(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
           (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

#endif
