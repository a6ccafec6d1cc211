/* The lifetime log: one JSON object per line, one file per process, each record
 * copied whole into the file (through a shared mapping) as it happens, so that
 * records of different threads never interleave and a crash or SIGKILL loses
 * nothing that was already recorded. */
#ifndef MODLIFE_LOG_WRITER_H
#define MODLIFE_LOG_WRITER_H

#include "json_writer.h"
#include "log_contract.h"

#include <stddef.h>

#define ML_RECORD_MAX (48 * 1024)

struct ml_record {
    struct json j;
    size_t header_len;
    char buf[ML_RECORD_MAX];
};

/* Creates "<prefix>.<pid>.jsonl" (".<pid>.<n>.jsonl" when taken, e.g. after exec
 * under the same pid): O_EXCL|O_NOFOLLOW, mode 0600.  -1 with a one-line reason. */
int ml_log_open(const char *prefix, char *err, size_t err_size);

/* fork: prepare and parent around it; in the child the parent's file belongs to
 * the parent, so reopen_in_child opens our own. */
void ml_log_atfork_prepare(void);
void ml_log_atfork_parent(void);
int ml_log_reopen_in_child(char *err, size_t err_size);

/* At exit: the file cut to its records (it grows ahead of them while mapped). */
void ml_log_finish(void);

const char *ml_log_path(void);
/* 0 in a process without a log (not watched, or a fork child whose log could not be
 * made): findings and exit records are then not written. */
int ml_log_is_open(void);

/* Nanoseconds since modlife started in this process (CLOCK_MONOTONIC). */
long long ml_log_now(void);
void ml_log_reset_clock(void);

/* A record: begin writes "event", "t", "tid"; end closes it and writes the line. */
void ml_record_begin(struct ml_record *r, enum ml_event event);
void ml_record_end(struct ml_record *r);

/* 1 while this thread copies a record under the window lock: a signal handler
 * that interrupted it must not finish the log. */
int ml_log_copying(void);

/* Says on stderr if the log file was removed while the process ran. */
void ml_log_check_at_exit(void);

/* Called after the file was found shortened under the process (a copytruncate
 * rotation), once records are appended to it: writes what makes the rest of the log
 * stand alone.  It may run while the writing thread holds other locks. */
void ml_log_set_restart_hook(void (*hook)(void));

/* From the SIGBUS handler: if addr lies in the log's window while this thread copies a
 * record into it (the file was cut between our check and the copy), the copy is let
 * finish into stand-in memory and the record goes by pwrite; 1 then. */
int ml_log_fault_in_window(const void *addr);

/* A fatal signal is being reported: records go out as they can, with no recovery
 * work that could take locks. */
void ml_log_dying(void);

#endif
