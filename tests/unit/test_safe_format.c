/* Unit test of the async-signal-safe formatter against the C library's snprintf. */
#include "safe_format.h"

#include "harness.h"

#include <stdio.h>
#include <string.h>

#define SAME(...)                                                                        \
    do {                                                                                 \
        char ours[128], theirs[128];                                                     \
        ml_format(ours, sizeof ours, __VA_ARGS__);                                       \
        snprintf(theirs, sizeof theirs, __VA_ARGS__);                                    \
        harness_check_str(ours, theirs, __FILE__, __LINE__, #__VA_ARGS__);               \
    } while (0)

int main(void)
{
    SAME("plain text");
    SAME("%s and %s", "one", "two");
    SAME("%.*s|", 3, "abcdef");
    SAME("%d %d %i %u", 0, -42, 2147483647, 4294967295u);
    SAME("%ld %lu %lld %llu", -9000000000L, 18000000000UL, -1LL, 18446744073709551615ULL);
    SAME("%zu %x %lx %llx", (size_t)77, 255u, 0xdeadbeefUL, 0x1234567890abcdefULL);
    SAME("%p", (void *)0x7f00aa);
    SAME("%c%c 100%%", 'o', 'k');
    SAME("==%d==ERROR: modlife: %s: %s", 1234, "finalize-crash", "SIGSEGV");

    char small[8];
    size_t n = ml_format(small, sizeof small, "%s", "a long text");
    CHECK_INT(n, 7);
    CHECK_STR(small, "a long ");
    char none[4];
    const char *volatile null_text = NULL; /* hidden from the compiler's format checks */
    ml_format(none, sizeof none, "%s", null_text);
    CHECK_STR(none, "(nu");
    return harness_done("test_safe_format");
}
