/* modlife's lines on stderr (see say.h). */
#include "say.h"

#include "safe_format.h"

#include <stdarg.h>
#include <unistd.h>

void ml_say_text(const char *text, size_t len)
{
    for (size_t done = 0; done < len;) {
        ssize_t n = write(2, text + done, len - done);
        if (n <= 0)
            break;
        done += (size_t)n;
    }
}

void ml_say(const char *fmt, ...)
{
    /* Room for a log path (ML_PATH_MAX) and what is said about it. */
    char line[5120];
    size_t n = ml_format(line, sizeof line - 1, "modlife: ");
    va_list ap;
    va_start(ap, fmt);
    n += ml_vformat(line + n, sizeof line - 1 - n, fmt, ap);
    va_end(ap);
    line[n++] = '\n';
    ml_say_text(line, n);
}
