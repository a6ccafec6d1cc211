/* What the fatal-signal handler tells about a crash besides its stack: the signal
 * and fault address, the interpreter and its phase, the wrapped slot that was
 * running, the module's last lifetime events and what of its extension was still
 * alive.  Filled and written without allocation; the registry is read only if its
 * lock is free at that moment (the crashing thread may hold it). */
#ifndef MODLIFE_CRASH_STORY_H
#define MODLIFE_CRASH_STORY_H

#include "event_ring.h"
#include "json_writer.h"
#include "slot_context.h"

#include <signal.h>
#include <stdint.h>

#define ML_STORY_EVENTS 12
#define ML_STORY_ALIVE 16

struct ml_crash_story {
    const char *signal;
    uintptr_t fault_address;
    int has_fault_address;
    long long interp;
    int finalizing;
    const char *slot;         /* "m_traverse/m_clear/m_free", "tp_dealloc", or NULL */
    char slot_owner[96];      /* the module or type whose slot ran */
    char module[48];          /* the extension module the story is about, "" if unknown */
    struct ml_ring_entry events[ML_STORY_EVENTS];
    int event_count;
    char alive[ML_STORY_ALIVE][96];
    int alive_count;
    int registry_busy;        /* alive could not be read */
    /* A state lookup in the running slot that returned NULL (its caller's return
     * address), the likely NULL the crash dereferenced. */
    const char *null_api;     /* "PyType_GetModuleState", ..., or NULL */
    const char *null_why;     /* "the type's module was cleared", ... */
    uintptr_t null_caller;
    char null_where[160];     /* the caller as function+offset (object), for the text */
};

/* The last state lookup of this thread that returned NULL inside a wrapped slot:
 * written by the lookup hooks (hooks/module_state.c), read by the fatal-signal
 * handler on the same thread, so a plain initial-exec TLS slot is enough. */
struct ml_null_lookup {
    const char *api;                  /* static string */
    const void *caller;               /* return address into the extension */
    const void *type;                 /* the type looked up from, NULL for PyModule_GetState */
    const struct ml_slot_frame *frame; /* the innermost slot running then */
    const void *object;               /* frame's object then */
};

extern __thread struct ml_null_lookup ml_null_lookup __attribute__((tls_model("initial-exec")));

/* A lookup returned NULL; type: what it was asked for (NULL: a module's state). */
void ml_crash_story_null_lookup(const char *api, const void *caller, const void *type);

/* The slot frame ends: a NULL lookup made in it no longer explains anything. */
static inline void ml_crash_story_slot_done(const struct ml_slot_frame *f)
{
    if (__builtin_expect(ml_null_lookup.frame == f, 0))
        ml_null_lookup.frame = NULL;
}

/* Fills in everything but signal, address, interpreter and phase. */
void ml_crash_story_fill(struct ml_crash_story *s, const char *module_hint);

void ml_crash_story_write(struct json *j, const struct ml_crash_story *s);

/* Text lines for the report, one call of put per line. */
void ml_crash_story_text(const struct ml_crash_story *s, void (*put)(void *arg, const char *line), void *arg);

#endif
