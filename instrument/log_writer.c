/* Lifetime log writer (see log_writer.h). */
#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_fd = -1;
static char log_prefix[4096];
static char log_path[4200];
static long long clock_origin;

static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void ml_log_reset_clock(void) { clock_origin = monotonic_ns(); }
long long ml_log_now(void) { return monotonic_ns() - clock_origin; }
const char *ml_log_path(void) { return log_path; }
int ml_log_is_open(void) { return log_fd >= 0; }

static int create_log(char *err, size_t err_size)
{
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC;
    int pid = (int)getpid();
    for (int n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(log_path, sizeof log_path, "%s.%d.jsonl", log_prefix, pid);
        else
            snprintf(log_path, sizeof log_path, "%s.%d.%d.jsonl", log_prefix, pid, n);
        int fd = open(log_path, flags, 0600);
        if (fd >= 0) {
            log_fd = fd;
            return 0;
        }
        if (errno != EEXIST) {
            snprintf(err, err_size, "cannot create the log file '%s': %s (log_path must name a writable directory and file prefix)",
                     log_path, strerror(errno));
            return -1;
        }
    }
    snprintf(err, err_size, "cannot create the log file '%s': 100 files of that name exist", log_path);
    return -1;
}

int ml_log_open(const char *prefix, char *err, size_t err_size)
{
    snprintf(log_prefix, sizeof log_prefix, "%s", prefix);
    return create_log(err, err_size);
}

int ml_log_reopen_in_child(char *err, size_t err_size)
{
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    return create_log(err, err_size);
}

void ml_record_begin(struct ml_record *r, const char *event)
{
    /* Two bytes stay free for the closing "}\n". */
    json_init(&r->j, r->buf, sizeof r->buf - 2);
    json_begin_object(&r->j);
    json_kv_string(&r->j, "event", event);
    json_kv_int(&r->j, "t", ml_log_now());
    json_kv_int(&r->j, "tid", (long long)gettid());
    r->header_len = r->j.len;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* ENOSPC and friends: the process goes on, the log stops growing */
        }
        p += w;
        n -= (size_t)w;
    }
}

void ml_record_end(struct ml_record *r)
{
    if (r->j.overflow) {
        /* Keep the record whole rather than cut: its header and a mark. */
        r->j.len = r->header_len;
        r->j.overflow = 0;
        json_kv_bool(&r->j, "truncated", 1);
    }
    r->buf[r->j.len++] = '}';
    r->buf[r->j.len++] = '\n';
    if (log_fd >= 0)
        write_all(r->buf, r->j.len);
}
