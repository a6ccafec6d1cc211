/* The finding kinds: name, severity, the rule each breaks and how to fix it, defined
 * once in kinds.def (tools/gen_contracts.py makes the tools' and the man page's copies
 * from it).  The names are a contract: tests, suppressions, the tools and reports use
 * them.  A leaf: the findings pipeline, the log records and the
 * stderr report read it, and it reads nothing of theirs. */
#ifndef MODLIFE_KINDS_H
#define MODLIFE_KINDS_H

enum ml_kind {
#define ML_KIND(id, name, severity, rule, fix, when) ML_##id,
#include "kinds.def"
    ML_KIND_COUNT
};

struct ml_kind_info {
    const char *name;
    int error;        /* 1: error (memory-unsafe or leaks), 0: warning */
    const char *rule; /* the HOWTO rule it breaks */
    const char *fix;  /* how to fix it */
};

extern const struct ml_kind_info ml_kinds[ML_KIND_COUNT];

int ml_kind_by_name(const char *name); /* -1 if unknown */
int ml_is_kind(const char *name);

#endif
