/* The last lifetime events of the process, kept in a fixed ring so that the fatal-
 * signal handler can tell what happened to a module just before a crash without
 * locks or allocation.  Writers claim a slot with an atomic counter; a reader keeps
 * an entry only if its sequence number did not change while it was copied. */
#ifndef MODLIFE_EVENT_RING_H
#define MODLIFE_EVENT_RING_H

struct ml_ring_entry {
    unsigned long long seq;      /* 0: never written */
    long long t;
    long long interp;
    unsigned long long instance; /* the module instance the event concerns */
    char event[16];
    char module[48];
    char type[80];               /* empty for module events */
};

void ml_ring_add(const char *event, const char *module, unsigned long long instance, const char *type,
                 long long interp);

/* Up to max of the newest entries about module (all entries if module is NULL),
 * oldest first.  Async-signal-safe. */
int ml_ring_recent(const char *module, struct ml_ring_entry *out, int max);

#endif
