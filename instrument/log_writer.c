/* Lifetime log writer (see log_writer.h).
 *
 * The first MAP_FROM bytes are written record by record with pwrite(2): most
 * processes write a few KiB, for which mapping, growing and cutting the file would
 * cost more than the writes.  Beyond, a write(2) per record cost more than making the
 * record: records are copied into a shared mapping of the file, a window that moves
 * along it.  Pages of a shared file mapping belong to the page cache the moment they
 * are written, so SIGKILL and SIGSEGV lose nothing.  The file grows a window at a
 * time with fallocate (never a sparse hole that would SIGBUS on a full disk); until
 * the process exits and the log is cut to its length, the records end in zeros,
 * which the readers take for the cut last line they already expect.  Any failure of
 * the mapping (a file system without fallocate, a full disk) sends this and every
 * later record through pwrite(2) at its reserved offset, as does a record written
 * from a signal handler that interrupted a copy. */
#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAP_FROM (64L << 10)
/* The window starts small and doubles with each move up to its largest. */
#define FIRST_WINDOW (64L << 10)
#define LARGEST_WINDOW (1L << 20)
/* A window starts at the page of its first record, which must fit whole. */
_Static_assert(FIRST_WINDOW >= ML_RECORD_MAX + 4096, "a record fits in any window");

static int log_fd = -1;
/* Bytes reserved so far: the offset of the next record. */
static long long log_end;
/* The window: [window_start, window_start + window_size) of the file, under window_lock. */
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static char *window;
static long long window_start, window_size = FIRST_WINDOW;
/* How records go: WRITING until MAP_FROM, then MAPPED; WRITING_ONLY after a failure
 * of the mapping or at exit.  grown: the file was made longer than its records. */
enum { WRITING, MAPPED, WRITING_ONLY };
static int mode = WRITING;
static int grown;
/* Set while this thread copies under window_lock: a signal handler that interrupts
 * it must not take the lock again. */
static __thread int copying __attribute__((tls_model("initial-exec")));
static char log_prefix[4096];
static char log_path[4200];
static long long clock_origin;
/* After a failed write the log is left alone: a record written once space is back
 * would follow a cut one, and a reader takes only a cut last line. */
static int log_broken;
static int failure_said;
/* gettid() is a system call, and this is every record: kept per thread.  The
 * thread that forks is the only one in the child, and gets a new id there. */
static __thread long long thread_id __attribute__((tls_model("initial-exec")));


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

static unsigned long long unguessable(void)
{
    unsigned long long r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    return (unsigned long long)monotonic_ns() * 0x9e3779b97f4a7c15ULL ^ (unsigned long long)(uintptr_t)&r;
}

static int create_log(char *err, size_t err_size)
{
    const int flags = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int pid = (int)getpid();
    for (int n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(log_path, sizeof log_path, "%s.%d.jsonl", log_prefix, pid);
        else if (n < 4)
            snprintf(log_path, sizeof log_path, "%s.%d.%d.jsonl", log_prefix, pid, n);
        else /* names taken on purpose, in a shared directory: one nobody can guess */
            snprintf(log_path, sizeof log_path, "%s.%d.%016llx.jsonl", log_prefix, pid, unguessable());
        int fd = open(log_path, flags, 0600);
        if (fd >= 0) {
            log_fd = fd;
            log_end = 0;
            window = NULL;
            window_size = FIRST_WINDOW;
            mode = WRITING;
            grown = 0;
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

void ml_log_atfork_prepare(void) { pthread_mutex_lock(&window_lock); }
void ml_log_atfork_parent(void) { pthread_mutex_unlock(&window_lock); }

/* Unmaps the window, if any (under window_lock). */
static void drop_window(void)
{
    if (window)
        munmap(window, (size_t)window_size);
    window = NULL;
}

int ml_log_reopen_in_child(char *err, size_t err_size)
{
    drop_window(); /* the parent's file, mapped: let go of it, never cut it */
    pthread_mutex_unlock(&window_lock);
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
    log_broken = failure_said = 0; /* a new file */
    thread_id = 0;                  /* and a new thread id */
    return create_log(err, err_size);
}

static long long current_thread_id(void)
{
    if (!thread_id)
        thread_id = (long long)gettid();
    return thread_id;
}

void ml_record_begin(struct ml_record *r, const char *event)
{
    /* Two bytes stay free for the closing "}\n". */
    json_init(&r->j, r->buf, sizeof r->buf - 2);
    json_begin_object(&r->j);
    json_kv_string(&r->j, "event", event);
    json_kv_int(&r->j, "t", ml_log_now());
    json_kv_int(&r->j, "tid", current_thread_id());
    r->header_len = r->j.len;
}

static void say(const char *text)
{
    ssize_t ignored = write(2, text, strlen(text));
    (void)ignored;
}

/* A log that cannot be written is said once on stderr; the program goes on and
 * the log ends at its last whole record.  Only write(2): this runs in the fatal-
 * signal handler too, where strerror and stdio are not safe. */
static void report_write_failure(int error)
{
    if (__atomic_exchange_n(&failure_said, 1, __ATOMIC_ACQ_REL))
        return;
    const char *why = error == ENOSPC ? "no space left on the device"
                      : error == EDQUOT ? "disk quota exceeded"
                      : error == EFBIG ? "file too large"
                      : error == EIO ? "input/output error"
                                     : "write error";
    say("modlife: cannot write the log ");
    say(log_path);
    say(": ");
    say(why);
    say("; it ends at its last whole record, and the program goes on\n");
}

void ml_log_check_at_exit(void)
{
    struct stat st;
    if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_nlink == 0) {
        say("modlife: the log ");
        say(log_path);
        say(" was removed while the process ran; its records are lost\n");
    }
}

static void write_at(const char *p, size_t n, long long off)
{
    while (n > 0 && !__atomic_load_n(&log_broken, __ATOMIC_ACQUIRE)) {
        ssize_t w = pwrite(log_fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            __atomic_store_n(&log_broken, 1, __ATOMIC_RELEASE);
            report_write_failure(errno);
            return;
        }
        p += w;
        off += w;
        n -= (size_t)w;
    }
}

/* Maps the window that starts at the page of off; 0, or -1 with the mapping off. */
static int move_window(long long off)
{
    int moving = window != NULL;
    drop_window();
    if (moving && window_size < LARGEST_WINDOW)
        window_size *= 2;
    long long start = off & ~(long long)(sysconf(_SC_PAGESIZE) - 1);
    if (fallocate(log_fd, 0, start, window_size) != 0)
        return -1;
    grown = 1;
    void *w = mmap(NULL, (size_t)window_size, PROT_READ | PROT_WRITE, MAP_SHARED, log_fd, start);
    if (w == MAP_FAILED)
        return -1;
    window = w;
    window_start = start;
    return 0;
}

/* Copies the record in at a fresh offset; 0, or -1 with *off reserved for pwrite. */
static int copy_mapped(const char *p, size_t n, long long *off)
{
    *off = __atomic_fetch_add(&log_end, (long long)n, __ATOMIC_RELAXED);
    if (!window || *off < window_start || *off + (long long)n > window_start + window_size) {
        if (move_window(*off) != 0) {
            __atomic_store_n(&mode, WRITING_ONLY, __ATOMIC_RELEASE);
            return -1;
        }
    }
    char *at = window + (*off - window_start);
    /* The newline last: a reader of the running log that sees it sees the record. */
    memcpy(at, p, n - 1);
    __atomic_store_n(at + n - 1, p[n - 1], __ATOMIC_RELEASE);
    return 0;
}

static void emit(const char *p, size_t n)
{
    if (__atomic_load_n(&log_broken, __ATOMIC_ACQUIRE))
        return;
    long long off = -1;
    int how = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (how == WRITING && __atomic_load_n(&log_end, __ATOMIC_RELAXED) >= MAP_FROM) {
        __atomic_compare_exchange_n(&mode, &how, MAPPED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        how = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    }
    if (!copying && how == MAPPED) {
        copying = 1;
        pthread_mutex_lock(&window_lock);
        int done = mode == MAPPED && copy_mapped(p, n, &off) == 0;
        pthread_mutex_unlock(&window_lock);
        copying = 0;
        if (done)
            return;
    }
    if (off < 0)
        off = __atomic_fetch_add(&log_end, (long long)n, __ATOMIC_RELAXED);
    write_at(p, n, off);
}

void ml_log_finish(void)
{
    if (log_fd < 0)
        return;
    pthread_mutex_lock(&window_lock);
    __atomic_store_n(&mode, WRITING_ONLY, __ATOMIC_RELEASE);
    drop_window();
    /* Records after this one (there may be: other atexit work) are written at
     * their offsets and grow the file again. */
    if (grown && ftruncate(log_fd, __atomic_load_n(&log_end, __ATOMIC_ACQUIRE)) != 0 && !log_broken) {
        __atomic_store_n(&log_broken, 1, __ATOMIC_RELEASE);
        report_write_failure(errno);
    }
    pthread_mutex_unlock(&window_lock);
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
        emit(r->buf, r->j.len);
}
