/* printf-style formatting that is async-signal-safe: no locale, no allocation, no
 * locks, so the fatal-signal handler and everything it calls can format reports.
 * A subset: %s %.*s %c %d %i %u %x with the l, ll and z modifiers, %p and %%.  Always
 * NUL-terminates; returns the length written (output is cut at size - 1). */
#ifndef MODLIFE_SAFE_FORMAT_H
#define MODLIFE_SAFE_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

size_t ml_vformat(char *buf, size_t size, const char *fmt, va_list ap);
size_t ml_format(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
