/* Which wrapped slot each thread is running, innermost first: detectors ask "is
 * this state lookup made by the module's own m_clear, or by a tp_dealloc that runs
 * inside it?", and the tp_dealloc/tp_traverse wrappers find where a walk up the
 * bases resumes.  Frames live on the wrappers' C stacks. */
#ifndef MODLIFE_SLOT_CONTEXT_H
#define MODLIFE_SLOT_CONTEXT_H

#include <stddef.h>

enum ml_slot {
    ML_SLOT_MODULE_EXEC,     /* object: the module */
    ML_SLOT_MODULE_TEARDOWN, /* m_traverse, m_clear, m_free; object: the module */
    ML_SLOT_TP_DEALLOC,      /* object: the instance; owner: the type whose original runs */
    ML_SLOT_TP_TRAVERSE,
};

struct ml_slot_frame {
    enum ml_slot slot;
    const void *object;
    const void *owner;
    struct ml_slot_frame *prev;
};

/* initial-exec: read by the crash handler, which must not allocate TLS. */
extern __thread struct ml_slot_frame *ml_slot_top __attribute__((tls_model("initial-exec")));

static inline void ml_slot_push(struct ml_slot_frame *f, enum ml_slot slot, const void *object,
                                const void *owner)
{
    f->slot = slot;
    f->object = object;
    f->owner = owner;
    f->prev = ml_slot_top;
    ml_slot_top = f;
}

static inline void ml_slot_pop(struct ml_slot_frame *f)
{
    ml_slot_top = f->prev;
}

/* Is a wrapped slot running on this object on this thread?  Then the object is
 * alive, whatever died at its address before. */
static inline int ml_slot_running_on(const void *object)
{
    for (const struct ml_slot_frame *f = ml_slot_top; f; f = f->prev)
        if (f->object == object)
            return 1;
    return 0;
}

/* The innermost frame of that slot kind, or NULL. */
static inline const struct ml_slot_frame *ml_slot_innermost(enum ml_slot slot)
{
    for (const struct ml_slot_frame *f = ml_slot_top; f; f = f->prev)
        if (f->slot == slot)
            return f;
    return NULL;
}

#endif
