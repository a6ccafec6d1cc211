/* Lifetime records: module-create/exec/clear/free, type-create/dealloc,
 * interp-create/finalize.  Callers pass copies of registry records taken under the
 * registry lock: the writers capture stacks and call into Python (for the Python
 * stack), which must never happen with that lock held. */
#ifndef MODLIFE_EVENTS_H
#define MODLIFE_EVENTS_H

#include "registry.h"

enum ml_stacks { ML_NO_STACKS, ML_WITH_STACKS };

void ml_event_module(const char *event, const struct ml_module_rec *m, enum ml_stacks stacks,
                     const char *note);
void ml_event_type(const char *event, const struct ml_type_rec *t, enum ml_stacks stacks);
void ml_event_static_type(const PyTypeObject *type, long long interp);
void ml_event_interp(const char *event, long long id, int is_main);

#endif
