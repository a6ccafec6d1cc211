/* User text for error messages (see visible_text.h). */
#include "visible_text.h"

#include <stdio.h>

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
