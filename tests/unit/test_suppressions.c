/* Unit tests of the suppressions parser and matcher (instrument/suppressions.c). */
#include "../../instrument/suppressions.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static int is_kind(const char *name)
{
    return !strcmp(name, "state-use-after-clear") || !strcmp(name, "type-outlives-module");
}

static void write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        printf("FAIL: cannot write %s\n", path);
        exit(1);
    }
}

/* Loading must refuse at once, with this message. */
static int load_fails_with(const char *path, const char *expected)
{
    struct ml_suppressions s = {0};
    char err[512] = "";
    int rc = ml_suppressions_load(&s, path, is_kind, err, sizeof err);
    if (rc != -1 || strcmp(err, expected) != 0) {
        printf("  %s: rc %d, '%s'\n  expected '%s'\n", path, rc, err, expected);
        return 0;
    }
    return 1;
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

    /* Files that are not text: each refused with one line that names it. */
    char dir[] = "/tmp/test_suppressions.XXXXXX", path[256], expected[512];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/fifo", dir);
    CHECK(mkfifo(path, 0600) == 0); /* no writer: a blocking open would wait forever */
    snprintf(expected, sizeof expected,
             "the suppressions file '%s' is a FIFO: give a text file of kind:pattern lines", path);
    CHECK(load_fails_with(path, expected));
    unlink(path);
    CHECK(load_fails_with("/dev/zero", "the suppressions file '/dev/zero' is a character device: "
                                       "give a text file of kind:pattern lines"));
    snprintf(expected, sizeof expected,
             "the suppressions file '%s' is a directory: give a text file of kind:pattern lines", dir);
    CHECK(load_fails_with(dir, expected));
    snprintf(path, sizeof path, "%s/nul.supp", dir);
    write_file(path, "# ok\nstate-use-after-clear:a\0b\n", 31);
    snprintf(expected, sizeof expected, "%s:2: a NUL byte: give a text file of kind:pattern lines", path);
    CHECK(load_fails_with(path, expected));
    snprintf(path, sizeof path, "%s/binary.supp", dir);
    write_file(path, "\n\n\x01\x02\xff", 5);
    snprintf(expected, sizeof expected, "%s:3: byte 0x01 is not text: give a text file of kind:pattern lines",
             path);
    CHECK(load_fails_with(path, expected));
    unlink(path);
    snprintf(path, sizeof path, "%s/large.supp", dir);
    static char large[(1 << 20) + 1];
    memset(large, '#', sizeof large);
    write_file(path, large, sizeof large);
    snprintf(expected, sizeof expected, "the suppressions file '%s' is larger than 1 MiB: give a text file of "
             "kind:pattern lines of at most 1 MiB", path);
    CHECK(load_fails_with(path, expected));
    write_file(path, large, sizeof large - 1); /* exactly 1 MiB of comment: fine */
    CHECK(ml_suppressions_load(&s, path, is_kind, err, sizeof err) == 0 && s.count == 0);
    ml_suppressions_free(&s);
    write_file(path, "\tstate-use-after-clear:x\r\n", 26); /* tab and CR are text */
    CHECK(ml_suppressions_load(&s, path, is_kind, err, sizeof err) == 0 && s.count == 1);
    ml_suppressions_free(&s);
    unlink(path);
    snprintf(path, sizeof path, "%s/nul.supp", dir);
    unlink(path);
    CHECK(rmdir(dir) == 0);

    return harness_done("test_suppressions");
}
