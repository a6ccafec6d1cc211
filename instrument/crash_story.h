/* What the fatal-signal handler tells about a crash besides its stack: the signal
 * and fault address, the interpreter and its phase, the wrapped slot that was
 * running, the module's last lifetime events and what of its extension was still
 * alive.  Filled and written without allocation; the registry is read only if its
 * lock is free at that moment (the crashing thread may hold it). */
#ifndef MODLIFE_CRASH_STORY_H
#define MODLIFE_CRASH_STORY_H

#include "event_ring.h"
#include "json_writer.h"

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
};

/* Fills in everything but signal, address, interpreter and phase. */
void ml_crash_story_fill(struct ml_crash_story *s, const char *module_hint);

void ml_crash_story_write(struct json *j, const struct ml_crash_story *s);

/* Text lines for the report, one call of put per line. */
void ml_crash_story_text(const struct ml_crash_story *s, void (*put)(void *arg, const char *line), void *arg);

#endif
