/* libFuzzer target: the MODLIFE_OPTIONS parser on any text.  It must return 0 or
 * -1 with a one-line message, leave every field in range, and never read or write
 * out of bounds (built with ASan and UBSan). */
#include "options.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct ml_options o;
    ml_options_defaults(&o);
    char err[256];
    int rc = ml_options_parse(&o, text, err, sizeof err);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && (!err[0] || strpbrk(err, "\n\r\x1b")))
        abort(); /* errors are one non-empty line */
    if (rc == 0 && (o.stack_depth < 1 || o.stack_depth > 256 || o.exitcode < 0 || o.exitcode > 255 ||
                    o.log_path[sizeof o.log_path - 1] != '\0'))
        abort();
    free(text);
    return 0;
}
