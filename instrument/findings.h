/* Findings: the lifecycle bugs modlife reports.  The kinds are defined in kinds.def,
 * with the tools' copy generated from it: tests, suppressions and reports name them.  A finding goes
 * through one pipeline: enabled kind? suppressed? seen here before? then a
 * "finding" record in the log and one report on stderr (report_text.c). */
#ifndef MODLIFE_FINDINGS_H
#define MODLIFE_FINDINGS_H

#include "registry.h"
#include "stack.h"

struct ml_crash_story;

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

/* A stack kept with a record, to explain a later finding. */
struct ml_context_stack {
    const char *what; /* "created", "cleared (m_clear)", "freed (m_free)", ... */
    const struct ml_saved_stack *stack;
};

struct ml_finding {
    enum ml_kind kind;
    char message[512];
    const char *module;          /* NULL if none */
    unsigned long long instance; /* 0 if none */
    long long interp;
    const char *type;            /* qualified name, NULL if none */
    const char *subject;         /* "module 'm' instance #2", "type 'm.T'": who the stacks below are of */
    char subject_buf[320];
    struct ml_context_stack context[3];
    int context_count;
    const struct ml_stack *access; /* NULL: the caller's stack is taken */
    /* The access happened earlier and was kept (native and Python frames); the
     * caller's stack is then a context. */
    const struct ml_saved_stack *access_saved;
    int in_signal_handler;         /* async-signal-safe path: no Python, no DWARF, no locks */
    const struct ml_crash_story *story; /* from the fatal-signal handler, or NULL */
    /* A bug of a type's slot (dealloc-missing-type-decref, traverse-missing-type-visit):
     * the slot and its function, which are the place of the finding (see findings.c). */
    const char *slot;            /* "tp_dealloc", ..., NULL if none */
    const void *slot_function;
    char slot_function_name[256]; /* filled by ml_finding_set_slot */
    /* Another finding that explains this one (the type outlives its module because
     * its dealloc leaks references to it): logged as "cause", and its own Fix:. */
    const char *cause_kind;       /* NULL if none */
    char cause_function[256];
    char fix_buf[512];
    const char *fix;              /* NULL: the kind's */
};

/* Fill in what the finding is about, with the stacks kept in the record (which
 * must outlive the report). */
void ml_finding_set_module(struct ml_finding *f, const struct ml_module_rec *m);
/* subclass: the instance's type when it is not the type itself, else NULL. */
void ml_finding_set_type(struct ml_finding *f, const struct ml_type_rec *t, const char *subclass);

/* function's name, or object+offset where no symbol holds it. */
void ml_function_name(const void *function, char *out, size_t size);

/* The finding is a bug of this slot function (not of the place it ran from). */
void ml_finding_set_slot(struct ml_finding *f, const char *slot, const void *function);

/* Reads report_kinds and suppressions; -1 with a one-line message. */
int ml_findings_configure(char *err, size_t err_size);

/* 1 if the kind is enabled (report_kinds); checks before costly detection work. */
int ml_finding_enabled(enum ml_kind kind);

/* Runs the pipeline; returns 1 if the finding was reported. */
int ml_finding_report(struct ml_finding *f);

/* Findings reported in this process. */
unsigned long ml_findings_reported(void);
/* In a forked child: nothing reported yet in this process. */
void ml_findings_atfork_child(void);
/* Those of them of an error kind. */
unsigned long ml_findings_reported_errors(void);

struct json;
/* "suppressed": [{"kind", "pattern", "count"}...] for the rules that matched, if
 * there is a suppressions file. */
void ml_findings_log_suppressed(struct json *j);

#endif
