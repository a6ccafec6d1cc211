/* User text quoted in a one-line error message: at most 64 characters, control
 * characters and bytes outside ASCII shown as \xNN, so a malformed option or
 * suppressions line cannot break the message over lines or into the terminal. */
#ifndef MODLIFE_VISIBLE_TEXT_H
#define MODLIFE_VISIBLE_TEXT_H

#include <stddef.h>

struct ml_visible {
    char text[64 * 4 + 4];
};

struct ml_visible ml_visible(const char *s, size_t len);

#endif
