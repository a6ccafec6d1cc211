/* Unit tests of the MODLIFE_OPTIONS parser (instrument/options.c). */
#include "../../instrument/options.h"
#include "harness.h"

#include <stdio.h>
#include <string.h>


static int parse(struct ml_options *o, const char *text, char *err)
{
    ml_options_defaults(o);
    err[0] = '\0';
    return ml_options_parse(o, text, err, 512);
}

/* Every key of options.def: its default is what ml_options_defaults sets, it parses
 * at its default and at the ends of its range, and is refused past them. */
static void check_table(void)
{
    struct ml_options o, d;
    char err[512], text[128];
    int keys = 0;
    ml_options_defaults(&d);
#define ML_OPTION_STRING(name, size, default, metavar, help)                                         \
    keys++;                                                                                       \
    CHECK_STR(d.name, default);                                                                   \
    CHECK_INT(sizeof d.name, size);                                                               \
    snprintf(text, sizeof text, "%s='%s'", #name, default);                                       \
    CHECK(parse(&o, text, err) == 0 && !strcmp(o.name, default));
#define ML_OPTION_INT(name, default, min, max, metavar, help)                                        \
    keys++;                                                                                       \
    CHECK_INT(d.name, default);                                                                   \
    snprintf(text, sizeof text, "%s=%d:%s=%d", #name, max, #name, min);                           \
    CHECK(parse(&o, text, err) == 0 && o.name == min);                                            \
    snprintf(text, sizeof text, "%s=%d", #name, max + 1);                                         \
    CHECK(parse(&o, text, err) == -1 && strstr(err, "expected an integer from " #min " to " #max)); \
    snprintf(text, sizeof text, "%s=%d", #name, min - 1);                                         \
    CHECK(parse(&o, text, err) == -1);
#define ML_OPTION_BOOL(name, default, help)                                                          \
    keys++;                                                                                       \
    CHECK_INT(d.name, default);                                                                   \
    CHECK(parse(&o, #name "=1", err) == 0 && o.name == 1);                                        \
    CHECK(parse(&o, #name "=no", err) == 0 && o.name == 0);                                       \
    CHECK(parse(&o, #name "=2", err) == -1 && strstr(err, "expected 0 or 1"));
#include "../../instrument/options.def"
    CHECK_INT(keys, 14);
}

int main(void)
{
    check_table();
    struct ml_options o;
    char err[512];

    CHECK(parse(&o, NULL, err) == 0 && o.stack_depth == 32 && o.python_stack == 1);
    CHECK(parse(&o, "", err) == 0);
    CHECK(parse(&o, "log_path=/tmp/x:stack_depth=8:python_stack=0", err) == 0);
    CHECK(!strcmp(o.log_path, "/tmp/x") && o.stack_depth == 8 && o.python_stack == 0);
    CHECK(parse(&o, "stack_depth=4:stack_depth=9", err) == 0 && o.stack_depth == 9);
    CHECK(parse(&o, "log_path='/tmp/a:b'", err) == 0 && !strcmp(o.log_path, "/tmp/a:b"));
    /* What modlife run passes: every string quoted with a quote it does not hold. */
    CHECK(parse(&o, "log_path='/tmp/a=\"b:c/m':stack_depth=5", err) == 0 && !strcmp(o.log_path, "/tmp/a=\"b:c/m"));
    CHECK(o.stack_depth == 5);
    CHECK(parse(&o, "log_path=\"/tmp/it's:x='y\"", err) == 0 && !strcmp(o.log_path, "/tmp/it's:x='y"));
    CHECK(parse(&o, NULL, err) == 0 && !strcmp(o.python_frames, "app"));
    CHECK(parse(&o, "python_frames=all", err) == 0 && !strcmp(o.python_frames, "all"));
    CHECK(parse(&o, "python_frames=app", err) == 0 && !strcmp(o.python_frames, "app"));
    CHECK(parse(&o, "python_frames=everything", err) == -1 &&
          !strcmp(err, "python_frames=everything: expected app or all"));
    CHECK(parse(&o, "python_frames=al", err) == -1 && strstr(err, "expected app or all"));
    CHECK(parse(&o, "notify=modlife-3f2a_9.x", err) == 0 && !strcmp(o.notify, "modlife-3f2a_9.x"));
    CHECK(parse(&o, "notify=\"abc\"", err) == 0 && !strcmp(o.notify, "abc"));
    CHECK(parse(&o, "notify=a/b", err) == -1 && strstr(err, "notify=a/b: expected a socket name"));
    CHECK(parse(&o, "notify=a b", err) == -1 && strstr(err, "socket name"));
    char long_name[120] = "notify=";
    memset(long_name + 7, 'n', 101);
    long_name[108] = '\0';
    CHECK(parse(&o, long_name, err) == -1 && strstr(err, "notify is too long (at most 100 characters)"));
    CHECK(parse(&o, "halt_on_error=true:exitcode=7", err) == 0 && o.halt_on_error == 1 && o.exitcode == 7);
    CHECK(parse(&o, "::stack_depth=3::", err) == 0 && o.stack_depth == 3);
    CHECK(parse(&o, NULL, err) == 0 && o.exit_on_warnings == 0);
    CHECK(parse(&o, "exit_on_warnings=1", err) == 0 && o.exit_on_warnings == 1);
    CHECK(parse(&o, "exit_on_warnings=yes:exit_on_warnings=0", err) == 0 && o.exit_on_warnings == 0);
    CHECK(parse(&o, "exit_on_warnings=2", err) == -1 && strstr(err, "exit_on_warnings=2: expected 0 or 1"));

    CHECK(parse(&o, "stack_depth=abc", err) == -1);
    CHECK(strstr(err, "stack_depth=abc") && strstr(err, "integer from 1 to 256"));
    CHECK(parse(&o, "stack_depth=0", err) == -1);
    CHECK(parse(&o, "stack_depth=257", err) == -1);
    CHECK(parse(&o, "stack_depth=", err) == -1);
    CHECK(parse(&o, "python_stack=maybe", err) == -1 && strstr(err, "expected 0 or 1"));
    CHECK(parse(&o, "nonsense=1", err) == -1 && strstr(err, "unknown option 'nonsense'") && strstr(err, "log_path"));
    CHECK(strstr(err, "exit_on_warnings") && strstr(err, "; see libmodlife(7))"));
    CHECK(parse(&o, "log_path", err) == -1 && strstr(err, "expected key=value"));
    CHECK(parse(&o, "=3", err) == -1 && strstr(err, "expected key=value"));
    CHECK(parse(&o, "log_path='/tmp/a", err) == -1 && strstr(err, "unterminated quote"));

    /* Found by tests/fuzz/fuzz_options.c: control characters in the input made a
     * message of several lines. */
    CHECK(parse(&o, "\n\0", err) == -1 && !strchr(err, '\n') && strstr(err, "'\\x0a'"));
    CHECK(parse(&o, "stack_depth=1\r2", err) == -1 && !strchr(err, '\r') && strstr(err, "1\\x0d2"));

    char long_value[5000];
    memset(long_value, 'a', sizeof long_value);
    memcpy(long_value, "log_path=", 9);
    long_value[sizeof long_value - 1] = '\0';
    CHECK(parse(&o, long_value, err) == -1 && strstr(err, "too long"));

    return harness_done("test_options");
}
