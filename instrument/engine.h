/* The engine: decides whether this process is one to watch (it runs Python of a
 * known version and is not setuid), reads the options, opens the log, installs the
 * hooks in the extension objects loaded now and later, and keeps per-process state
 * right across fork.  The entry points (preload.c, audit.c) only forward here. */
#ifndef MODLIFE_ENGINE_H
#define MODLIFE_ENGINE_H

enum ml_entry { ML_ENTRY_PRELOAD, ML_ENTRY_AUDIT };

/* 1 once this process is being watched. */
int ml_engine_active(void);

/* Called once from the entry point; inert (and silent) in non-Python processes. */
void ml_engine_start(enum ml_entry entry);

/* New objects may have been loaded (after dlopen, or an audit activity report). */
void ml_engine_objects_changed(void);

#endif
