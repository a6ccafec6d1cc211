/* The C unit tests' harness: one test program per core component (as compiler-rt has
 * one test file per component), each run by make check (TESTS).  A failed check says
 * where and what, and the program goes on to the next; it exits 1 if any failed, and
 * also if none ran, so that a test whose cases were all left out cannot pass. */
#ifndef MODLIFE_TEST_HARNESS_H
#define MODLIFE_TEST_HARNESS_H

#include <stdio.h>
#include <string.h>

static int harness_checks, harness_failures;

static inline int harness_check(int ok, const char *file, int line, const char *what)
{
    harness_checks++;
    if (!ok) {
        printf("FAIL %s:%d: %s\n", file, line, what);
        harness_failures++;
    }
    return ok;
}

static inline int harness_check_str(const char *got, const char *want, const char *file, int line, const char *what)
{
    harness_checks++;
    if (!got || strcmp(got, want)) {
        printf("FAIL %s:%d: %s: '%s' != '%s'\n", file, line, what, got ? got : "(null)", want);
        harness_failures++;
        return 0;
    }
    return 1;
}

static inline int harness_check_int(long long got, long long want, const char *file, int line, const char *what)
{
    harness_checks++;
    if (got != want) {
        printf("FAIL %s:%d: %s: %lld != %lld\n", file, line, what, got, want);
        harness_failures++;
        return 0;
    }
    return 1;
}

/* Each returns 1 if the check held. */
#define CHECK(cond) harness_check(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_STR(got, want) harness_check_str((got), (want), __FILE__, __LINE__, #got)
#define CHECK_INT(got, want) harness_check_int((long long)(got), (long long)(want), __FILE__, __LINE__, #got)

/* main's return value: the test program's verdict. */
static inline int harness_done(const char *name)
{
    if (harness_failures) {
        printf("%s: %d of %d checks failed\n", name, harness_failures, harness_checks);
        return 1;
    }
    if (!harness_checks) {
        printf("%s: no checks ran\n", name);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, harness_checks);
    return 0;
}

#endif
