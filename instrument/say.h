/* What modlife says on stderr, the one way it says it: "modlife: <text>\n" in one
 * write(2), so that lines of threads and processes do not interleave.  Formatted by
 * safe_format.c (its subset of printf), with no allocation, lock or stdio: it serves
 * the child of a fork of a threaded process and the fatal-signal handler alike. */
#ifndef MODLIFE_SAY_H
#define MODLIFE_SAY_H

#include <stddef.h>

void ml_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Text made whole beforehand (a finding's report), written as it is. */
void ml_say_text(const char *text, size_t len);

#endif
