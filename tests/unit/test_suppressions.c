/* Unit tests of the suppressions parser and matcher (instrument/suppressions.c). */
#include "../../instrument/suppressions.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                    \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static int is_kind(const char *name)
{
    return !strcmp(name, "state-use-after-clear") || !strcmp(name, "type-outlives-module");
}

int main(void)
{
    struct ml_suppressions s;
    char err[512];

    CHECK(ml_suppressions_parse(&s, "", "f", is_kind, err, sizeof err) == 0 && s.count == 0);
    CHECK(ml_suppressions_parse(&s, "# comment\n\n  \nstate-use-after-clear:mymod  # why\n"
                                    "*: libfoo*.so\ntype-outlives-module:pkg.*Type\n",
                                "f", is_kind, err, sizeof err) == 0);
    CHECK(s.count == 3 && !strcmp(s.items[0].pattern, "mymod") && !strcmp(s.items[1].kind, "*"));
    const char *names1[] = {"othermod", NULL, "helper", "/lib/libfoo1.so"};
    CHECK(ml_suppressions_match(&s, "state-use-after-clear", names1, 4) == &s.items[1]); /* by object */
    const char *names2[] = {"mymod", NULL};
    CHECK(ml_suppressions_match(&s, "state-use-after-clear", names2, 2) == &s.items[0]); /* by module */
    const char *names3[] = {"x", "pkg.BadType"};
    CHECK(ml_suppressions_match(&s, "type-outlives-module", names3, 2) == &s.items[2]); /* by type */
    CHECK(ml_suppressions_match(&s, "state-use-after-clear", names3, 2) == NULL);
    CHECK(s.items[0].hits == 1 && s.items[1].hits == 1);
    ml_suppressions_free(&s);

    CHECK(ml_suppressions_parse(&s, "state-use-after-clear:ok\nno colon here\n", "sup.txt", is_kind, err,
                                sizeof err) == -1);
    CHECK(strstr(err, "sup.txt:2: expected kind:pattern, got 'no colon here'") != NULL);
    CHECK(ml_suppressions_parse(&s, "use-after-lunch:x\n", "sup.txt", is_kind, err, sizeof err) == -1);
    CHECK(strstr(err, "sup.txt:1: unknown finding kind 'use-after-lunch'") != NULL);
    CHECK(ml_suppressions_parse(&s, "bad\x1b[2Jline\n", "sup.txt", is_kind, err, sizeof err) == -1);
    CHECK(strstr(err, "got 'bad\\x1b[2Jline'") != NULL); /* no escape sequence reaches the terminal */
    CHECK(ml_suppressions_parse(&s, "state-use-after-clear:\n", "sup.txt", is_kind, err, sizeof err) == -1);
    CHECK(ml_suppressions_parse(&s, ":x\n", "sup.txt", is_kind, err, sizeof err) == -1);
    CHECK(ml_suppressions_load(&s, "/nonexistent/file", is_kind, err, sizeof err) == -1);
    CHECK(strstr(err, "cannot read the suppressions file '/nonexistent/file'") != NULL);

    if (failures)
        return 1;
    printf("test_suppressions: all passed\n");
    return 0;
}
