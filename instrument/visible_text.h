/* User text made harmless for a terminal. */
#ifndef MODLIFE_VISIBLE_TEXT_H
#define MODLIFE_VISIBLE_TEXT_H

#include <stddef.h>

/* User text quoted in a one-line error message: at most 64 characters, control
 * characters and bytes outside ASCII shown as \xNN, so a malformed option or
 * suppressions line cannot break the message over lines or into the terminal. */
struct ml_visible {
    char text[64 * 4 + 4];
};

struct ml_visible ml_visible(const char *s, size_t len);

/* Names (modules, types, files, functions) in a report on stderr, written into
 * out (cap bytes; NUL-terminated, cut before an escape that does not fit):
 * returns the length.  A byte that is a C0 control or DEL, or not part of
 * well-formed UTF-8, is shown as \xNN; an invisible code point (C1 controls, line
 * and paragraph separators, bidirectional formatting) as \uNNNN; a backslash as
 * \\, so that every escape reads one way.  Other text, ASCII or not, is kept.
 * Async-signal-safe. */
size_t ml_terminal_text(char *out, size_t cap, const char *s, size_t len);

#endif
