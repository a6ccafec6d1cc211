/* The finding kinds: name, severity, the rule each breaks and how to fix it.  The
 * names are a contract: tests, suppressions, the tools (tools/python/modlife/kinds.py)
 * and the man page use them.  A leaf: the findings pipeline, the log records and the
 * stderr report read it, and it reads nothing of theirs. */
#ifndef MODLIFE_KINDS_H
#define MODLIFE_KINDS_H

enum ml_kind {
    ML_STATE_USE_AFTER_CLEAR,
    ML_STATE_USE_AFTER_FREE,
    ML_TYPE_OUTLIVES_MODULE,
    ML_DEALLOC_MISSING_TYPE_DECREF,
    ML_TRAVERSE_MISSING_TYPE_VISIT,
    ML_PYOBJECT_NEW_ON_GC_TYPE,
    ML_TP_FREE_OVERRIDE,
    ML_STATIC_TYPE_IN_MULTIPHASE_MODULE,
    ML_STATE_FROM_NON_MODULE,
    ML_FINALIZE_CRASH,
    ML_STATE_FROM_OTHER_INTERPRETER,
    ML_DANGLING_GLOBAL,
    ML_TYPE_FROM_OTHER_INTERPRETER,
    ML_MODULE_OUTLIVES_INTERPRETER,
    ML_KIND_COUNT
};

struct ml_kind_info {
    const char *name;
    int error;        /* 1: error (memory-unsafe or leaks), 0: warning */
    const char *rule; /* the HOWTO rule it breaks */
    const char *fix;  /* how to fix it (the tools' kinds.py says the same) */
};

extern const struct ml_kind_info ml_kinds[ML_KIND_COUNT];

int ml_kind_by_name(const char *name); /* -1 if unknown */
int ml_is_kind(const char *name);

#endif
