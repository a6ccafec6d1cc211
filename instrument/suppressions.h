/* Suppressions: a file of "kind:pattern" lines, in the manner of sanitizer
 * suppression files.  kind is a finding kind or "*"; pattern is a glob matched
 * against the finding's module, type, and the functions and object files (path or
 * file name) of its access stack.  '#' starts a comment.  Parsing is a pure function over text so
 * that it can be tested and fuzzed on its own. */
#ifndef MODLIFE_SUPPRESSIONS_H
#define MODLIFE_SUPPRESSIONS_H

#include <stddef.h>

struct ml_suppression {
    char kind[64];
    char pattern[256];
    unsigned long hits;
};

struct ml_suppressions {
    struct ml_suppression *items;
    size_t count;
};

/* is_kind(name) says whether a kind name is valid.  Returns 0, or -1 with a
 * one-line message "FILE:LINE: ..." in err. */
int ml_suppressions_parse(struct ml_suppressions *s, const char *text, const char *file,
                          int (*is_kind)(const char *), char *err, size_t err_size);

/* A suppressions file is a regular file of text: no FIFO (it would block start-up),
 * no device (/dev/zero has no end), at most this size. */
#define ML_SUPPRESSIONS_MAX_SIZE (1L << 20)
#define ML_SUPPRESSIONS_WANTED "give a text file of kind:pattern lines"

/* -1 with "FILE:LINE: ..." at the first NUL or control byte (tab and CR are text). */
int ml_suppressions_check_text(const char *text, size_t len, const char *file, char *err, size_t err_size);

/* Reads, checks and parses a file; -1 with a one-line message if it is not a
 * regular file, is too large, is not text, or is malformed. */
int ml_suppressions_load(struct ml_suppressions *s, const char *path, int (*is_kind)(const char *),
                         char *err, size_t err_size);

/* The first suppression of kind matching any of the names, or NULL. */
struct ml_suppression *ml_suppressions_match(struct ml_suppressions *s, const char *kind,
                                             const char *const *names, size_t count);

void ml_suppressions_free(struct ml_suppressions *s);

#endif
