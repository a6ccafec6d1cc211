/* libFuzzer target: the text check of a loaded file on any bytes, the suppressions
 * parser on any text, then a match against it.
 * It must return 0 or -1 with a one-line "FILE:LINE: ..." message and never read or
 * write out of bounds (built with ASan and UBSan). */
#include "suppressions.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int is_kind(const char *name)
{
    return !strcmp(name, "state-use-after-clear") || !strcmp(name, "type-outlives-module");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct ml_suppressions s = {0};
    char err[256];
    int text_rc = ml_suppressions_check_text((const char *)data, size, "fuzz.supp", err, sizeof err);
    if ((text_rc != 0 && text_rc != -1) || (text_rc == -1 && (strncmp(err, "fuzz.supp:", 10) != 0 ||
                                                              strpbrk(err, "\n\r\x1b"))))
        abort();
    if (text_rc == 0 && memchr(data, 0, size))
        abort(); /* a NUL must never reach the parser, which stops at it */
    int rc = ml_suppressions_parse(&s, text, "fuzz.supp", is_kind, err, sizeof err);
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && (strncmp(err, "fuzz.supp:", 10) != 0 || strpbrk(err, "\n\r\x1b")))
        abort();
    if (rc == 0) {
        const char *names[] = {"mod", "mod.Type", "function_name", "/path/to/ext.so", text};
        ml_suppressions_match(&s, "state-use-after-clear", names, sizeof names / sizeof names[0]);
    }
    ml_suppressions_free(&s);
    free(text);
    return 0;
}
