/* MODLIFE_OPTIONS: "key=value" pairs separated by ':' in the style of ASAN_OPTIONS.
 * The parser is a pure function over a string so that it can be tested and fuzzed
 * on its own (tests/unit/test_options.c). */
#ifndef MODLIFE_OPTIONS_H
#define MODLIFE_OPTIONS_H

#include <stddef.h>

#define ML_PATH_MAX 4096
/* An abstract socket name fits sun_path after its leading NUL. */
#define ML_NOTIFY_MAX 100

/* The fields are the keys of options.def, which says what each means. */
struct ml_options {
#define ML_OPTION_STRING(name, size, default, metavar, help) char name[size];
#define ML_OPTION_INT(name, default, min, max, metavar, help) int name;
#define ML_OPTION_BOOL(name, default, help) int name;
#include "options.def"
};

/* The process's options, read once at engine start and only read after. */
extern struct ml_options ml_opts;

void ml_options_defaults(struct ml_options *o);

/* Parses text (may be NULL) over the defaults already in o.  Returns 0, or -1 with
 * a one-line message in err naming the bad option and what would be right. */
int ml_options_parse(struct ml_options *o, const char *text, char *err, size_t err_size);

#endif
