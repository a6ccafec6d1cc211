/* MODLIFE_OPTIONS: "key=value" pairs separated by ':' in the style of ASAN_OPTIONS.
 * The parser is a pure function over a string so that it can be tested and fuzzed
 * on its own (tests/unit/test_options.c). */
#ifndef MODLIFE_OPTIONS_H
#define MODLIFE_OPTIONS_H

#include <stddef.h>

#define ML_PATH_MAX 4096
/* An abstract socket name fits sun_path after its leading NUL. */
#define ML_NOTIFY_MAX 100

struct ml_options {
    char log_path[ML_PATH_MAX];     /* prefix; ".<pid>.jsonl" is appended */
    int stack_depth;                /* native and Python frames kept per stack */
    int python_stack;               /* attach Python frames where a thread state exists */
    int symbolize;                  /* name native frames in the process */
    int halt_on_error;              /* exit after the first finding */
    int exitcode;                   /* status when errors were reported */
    int exit_on_warnings;           /* warnings set exitcode too */
    char suppressions[ML_PATH_MAX]; /* file of kind:pattern lines, "" for none */
    char report_kinds[1024];        /* comma list, "-kind" disables, "" = all */
    int verbosity;                  /* 0 quiet, 1 one line at start, 2 and one per extension patched */
    int dedup_python_frames;        /* Python frames that tell one place of a finding from another */
    int stack_ids;                  /* lifetime records name their stacks, each written once */
    char notify[ML_NOTIFY_MAX + 1]; /* abstract unix socket told of a process without a log */
    char python_frames[4];          /* reports: "app" leaves out importlib's, pytest's and
                                       pluggy's frames; "all" keeps them */
};

/* The process's options, read once at engine start and only read after. */
extern struct ml_options ml_opts;

void ml_options_defaults(struct ml_options *o);

/* Parses text (may be NULL) over the defaults already in o.  Returns 0, or -1 with
 * a one-line message in err naming the bad option and what would be right. */
int ml_options_parse(struct ml_options *o, const char *text, char *err, size_t err_size);

#endif
