/* The log's contract with the tools, from events.def: the format number and the
 * names of the records' "event".  A leaf: the writers of records include it. */
#ifndef MODLIFE_LOG_CONTRACT_H
#define MODLIFE_LOG_CONTRACT_H

/* process-start's "log_format" (events.def says when it changes). */
enum {
#define ML_LOG_FORMAT(number) ML_LOG_FORMAT_NUMBER = number
#include "events.def"
};

/* A record's "event": ML_EVENT_MODULE_CREATE is "module-create" (events.def). */
enum ml_event {
#define ML_EVENT(id, name) ML_EVENT_##id,
#include "events.def"
    ML_EVENT_COUNT
};

static inline const char *ml_event_name(enum ml_event event)
{
    static const char *const names[ML_EVENT_COUNT] = {
#define ML_EVENT(id, name) [ML_EVENT_##id] = name,
#include "events.def"
    };
    return names[event];
}

#endif
