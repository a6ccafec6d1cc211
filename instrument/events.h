/* Lifetime records: module-create/exec/clear/free, type-create/dealloc,
 * interp-create/finalize.  Callers pass copies of registry records taken under the
 * registry lock: the writers capture stacks and call into Python (for the Python
 * stack), which must never happen with that lock held. */
#ifndef MODLIFE_EVENTS_H
#define MODLIFE_EVENTS_H

#include "findings.h"
#include "log_contract.h"
#include "registry.h"

/* The stacks of an event, taken once: all native frames for the log record, and
 * a short copy with the Python frames to keep with the registry record. */
struct ml_capture {
    struct ml_stack native;
    struct ml_saved_stack saved;
};

void ml_capture_stacks(struct ml_capture *c);

/* c: the stacks to write, or NULL for none. */
void ml_event_module(enum ml_event event, const struct ml_module_rec *m, const struct ml_capture *c,
                     const char *note);
void ml_event_type(enum ml_event event, const struct ml_type_rec *t, const struct ml_capture *c);
void ml_event_static_type(const PyTypeObject *type, long long interp, const struct ml_capture *c);
void ml_event_interp(enum ml_event event, long long id, int is_main);
void ml_event_finding(const struct ml_finding *f, const struct ml_stack *access);

#endif
