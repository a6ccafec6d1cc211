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

#include "say.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
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
/* What the log is: the descriptor is checked against it before each use, since the
 * program may close it (closerange, daemons) and get the number back for a file of
 * its own, which must never be written. */
static dev_t log_dev;
static ino_t log_ino;
/* Bytes reserved so far: the offset of the next record. */
static long long log_end;
/* The file is at least this long unless someone else shortened it (log rotation by
 * copytruncate): the bytes written with pwrite (disjoint ranges, so their sum), and
 * the end of the window fallocate made. */
static long long bytes_written, allocated_end;
/* After the file was shortened under us it is appended to (O_APPEND: pwrite then
 * ignores the offset), as other writers of a rotated log do. */
static int appending;
static void (*restart_hook)(void);
static __thread int restarting __attribute__((tls_model("initial-exec")));
/* The window: [window_start, window_start + window_size) of the file, under window_lock. */
static pthread_mutex_t window_lock = PTHREAD_MUTEX_INITIALIZER;
static char *window;
static long long window_start, window_size = FIRST_WINDOW;
/* How records go: WRITING until MAP_FROM, then MAPPED; WRITING_ONLY after a failure
 * of the mapping or at exit.  grown: the file was made longer than its records. */
enum { WRITING, MAPPED, WRITING_ONLY };
static int mode = WRITING;
static int grown;
/* Set while this thread holds window_lock (a copy, a restart, the cut at exit): a
 * signal handler that interrupts it must not take the lock again. */
static __thread int copying __attribute__((tls_model("initial-exec")));
static char log_prefix[4096];
static char log_path[4200];
static long long clock_origin;
/* After a failed write the log is left alone: a record written once space is back
 * would follow a cut one, and a reader takes only a cut last line. */
static int log_broken;
static int failure_said;
/* Where the file ends once a failed write was marked with a log-incomplete record. */
static long long incomplete_end = -1;
/* Set when a fault on the window (the file shortened between our check and the copy)
 * was answered by putting anonymous memory there. */
static int window_lost;
static int dying;

void ml_log_dying(void) { __atomic_store_n(&dying, 1, __ATOMIC_RELEASE); }
/* gettid() is a system call, and this is every record: kept per thread.  The
 * thread that forks is the only one in the child, and gets a new id there. */
static __thread long long thread_id __attribute__((tls_model("initial-exec")));


static long long monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Copies into the window never use the descriptor, so there the file is checked at
 * most once a millisecond (an fstat per record was a tenth of the cost of a heap
 * type's records), always before the window moves, and again after a failed copy.
 * A truncation in between is met by the SIGBUS of the next copy, as one between a
 * check and a copy always was (ml_log_fault_in_window). */
#define MAPPED_CHECK_NS 1000000LL
static long long next_mapped_check;

static int mapped_check_due(void)
{
    long long now = monotonic_ns(), next = __atomic_load_n(&next_mapped_check, __ATOMIC_RELAXED);
    if (now < next)
        return 0;
    __atomic_store_n(&next_mapped_check, now + MAPPED_CHECK_NS, __ATOMIC_RELAXED);
    return 1;
}

void ml_log_reset_clock(void) { clock_origin = monotonic_ns(); }
long long ml_log_now(void) { return monotonic_ns() - clock_origin; }
const char *ml_log_path(void) { return log_path; }

/* The log's descriptor moves high, out of the numbers the program counts on (a
 * program that opens a file right after start-up expects 3), below the usual 1024
 * so that no larger descriptor table is made. */
static int move_high(int fd)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return fd;
    rlim_t limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1024 ? 1024 : rl.rlim_cur;
    if (limit < 128)
        return fd;
    int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)(limit - 64));
    if (high < 0)
        return fd;
    close(fd);
    return high;
}

static void adopt(int fd)
{
    struct stat st;
    log_fd = move_high(fd);
    if (fstat(log_fd, &st) == 0) {
        log_dev = st.st_dev;
        log_ino = st.st_ino;
    }
    log_end = bytes_written = allocated_end = 0;
    appending = 0;
    incomplete_end = -1;
    window = NULL;
    window_size = FIRST_WINDOW;
    mode = WRITING;
    grown = 0;
}

static int is_our_file(int fd, struct stat *st)
{
    return fd >= 0 && fstat(fd, st) == 0 && st->st_dev == log_dev && st->st_ino == log_ino;
}

/* The program closed our descriptor (and may hold its number now): the log is opened
 * again by its path if that is still our file.  0, or -1 with the log given up. */
static int reopen_by_path(struct stat *st)
{
    int fd = open(log_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | (appending ? O_APPEND : 0));
    if (fd < 0)
        return -1;
    if (!is_our_file(fd, st)) {
        close(fd);
        return -1;
    }
    log_fd = move_high(fd);
    return 0;
}

static unsigned long long unguessable(void)
{
    unsigned long long r;
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) == (ssize_t)sizeof r)
        return r;
    return (unsigned long long)monotonic_ns() * 0x9e3779b97f4a7c15ULL ^ (unsigned long long)(uintptr_t)&r;
}

int ml_log_is_open(void) { return log_fd >= 0; }
int ml_log_copying(void) { return copying; }

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
            adopt(fd);
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
    struct stat st;
    if (is_our_file(log_fd, &st)) /* else the number is the program's now */
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

void ml_record_begin(struct ml_record *r, enum ml_event event)
{
    /* Two bytes stay free for the closing "}\n". */
    json_init(&r->j, r->buf, sizeof r->buf - 2);
    json_begin_object(&r->j);
    json_kv_string(&r->j, "event", ml_event_name(event));
    json_kv_int(&r->j, "t", ml_log_now());
    json_kv_int(&r->j, "tid", current_thread_id());
    r->header_len = r->j.len;
}

static const char *write_error_name(int error)
{
    return error == ENOSPC ? "no space left on the device"
           : error == EDQUOT ? "disk quota exceeded"
           : error == EFBIG ? "file too large"
           : error == EIO ? "input/output error"
                          : "write error";
}

/* The log ends with a record that says why, where the failed record was to start:
 * cutting the file there frees the part of it that was written, and a short record
 * often fits in the block the one before it already took (when it does not, the
 * log ends at that record).  Tools then say why the log is incomplete instead of
 * guessing a crash.  Signal-safe: no stdio. */
static void mark_incomplete(long long off, const char *why)
{
    char buf[128];
    struct json j;
    json_init(&j, buf, sizeof buf - 2);
    json_begin_object(&j);
    json_kv_string(&j, "event", ml_event_name(ML_EVENT_LOG_INCOMPLETE));
    json_kv_int(&j, "t", ml_log_now());
    json_kv_string(&j, "reason", why);
    buf[j.len++] = '}';
    buf[j.len++] = '\n';
    if (appending || ftruncate(log_fd, off) != 0)
        return;
    long long end = off;
    if (pwrite(log_fd, buf, j.len, off) == (ssize_t)j.len)
        end += (long long)j.len;
    else if (ftruncate(log_fd, off) != 0) /* no room even for that: the last whole record ends it */
        return;
    __atomic_store_n(&incomplete_end, end, __ATOMIC_RELEASE);
}

/* A log that cannot be written is said once on stderr; the program goes on and
 * the log ends at its last whole record.  By ml_say: this runs in the fatal-signal
 * handler too, where strerror and stdio are not safe. */
static void report_write_failure(int error, long long off)
{
    __atomic_store_n(&log_broken, 1, __ATOMIC_RELEASE);
    if (__atomic_exchange_n(&failure_said, 1, __ATOMIC_ACQ_REL))
        return;
    const char *why = write_error_name(error);
    if (off >= 0)
        mark_incomplete(off, why);
    ml_say("cannot write the log %s: %s; it ends at its last whole record, and the program goes on", log_path,
           why);
}

/* The log's descriptor no longer is the log and the file cannot be found again:
 * nothing more is written, rather than into a file of the program's. */
static void give_up_lost_log(void)
{
    __atomic_store_n(&log_broken, 1, __ATOMIC_RELEASE);
    if (__atomic_exchange_n(&failure_said, 1, __ATOMIC_ACQ_REL))
        return;
    ml_say("the program closed the descriptor of the log %s and the file cannot be opened again; the log ends "
           "here, and the program goes on", log_path);
}

void ml_log_check_at_exit(void)
{
    struct stat st;
    if (is_our_file(log_fd, &st) && st.st_nlink == 0) {
        ml_say("the log %s was removed while the process ran; its records are lost", log_path);
    }
}

void ml_log_set_restart_hook(void (*hook)(void)) { restart_hook = hook; }

static void write_at(const char *p, size_t n, long long off)
{
    const long long start = off;
    while (n > 0 && !__atomic_load_n(&log_broken, __ATOMIC_ACQUIRE)) {
        ssize_t w = pwrite(log_fd, p, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            report_write_failure(errno, start);
            return;
        }
        __atomic_fetch_add(&bytes_written, (long long)w, __ATOMIC_RELEASE);
        p += w;
        off += w;
        n -= (size_t)w;
    }
}

/* How long the file is at least, unless someone else shortened it. */
static long long size_floor(void)
{
    long long written = __atomic_load_n(&bytes_written, __ATOMIC_ACQUIRE);
    long long allocated = __atomic_load_n(&allocated_end, __ATOMIC_ACQUIRE);
    return written > allocated ? written : allocated;
}

/* Maps the window that starts at the page of off; 0, or -1 with the mapping off. */
static int move_window(long long off)
{
    int moving = window != NULL;
    drop_window();
    struct stat st;
    /* Not ours any more, or shortened: the caller's check_file sorts it out. */
    if (!is_our_file(log_fd, &st) || st.st_size < size_floor())
        return -1;
    if (moving && window_size < LARGEST_WINDOW)
        window_size *= 2;
    long long start = off & ~(long long)(sysconf(_SC_PAGESIZE) - 1);
    if (fallocate(log_fd, 0, start, window_size) != 0)
        return -1;
    grown = 1;
    __atomic_store_n(&allocated_end, start + window_size, __ATOMIC_RELEASE);
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
    if (__atomic_load_n(&window_lost, __ATOMIC_ACQUIRE)) {
        /* The copy went into the stand-in memory: the file was cut meanwhile. */
        drop_window();
        window_lost = 0;
        __atomic_store_n(&mode, WRITING_ONLY, __ATOMIC_RELEASE);
        return -1;
    }
    return 0;
}

/* The file was shortened under us (copytruncate rotation): from now on records are
 * appended to what it is, starting with the records that make a log stand alone
 * (the restart hook). */
static void restart_after_truncation(void)
{
    int was_copying = copying;
    copying = 1;
    pthread_mutex_lock(&window_lock);
    struct stat st;
    int still_short = is_our_file(log_fd, &st) && st.st_size < size_floor();
    if (still_short) {
        drop_window();
        int flags = fcntl(log_fd, F_GETFL);
        if (flags >= 0)
            fcntl(log_fd, F_SETFL, flags | O_APPEND);
        appending = 1;
        grown = 0;
        __atomic_store_n(&allocated_end, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&bytes_written, 0, __ATOMIC_RELEASE);
        __atomic_store_n(&log_end, (long long)st.st_size, __ATOMIC_RELEASE);
        __atomic_store_n(&mode, WRITING_ONLY, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&window_lock);
    copying = was_copying;
    if (still_short && restart_hook) {
        restarting = 1;
        restart_hook();
        restarting = 0;
    }
}

/* Before each record: the descriptor still is the log (found again by path if the
 * program closed it), and the file is no shorter than what we put in it.  0 to
 * write; -1 when the log is given up.  Signal handlers (a fatal signal, possibly
 * inside a copy) check only the descriptor. */
static int check_file(int from_signal)
{
    struct stat st;
    /* Read before fstat: what it counts was in the file by then. */
    long long floor = size_floor();
    if (!is_our_file(log_fd, &st)) {
        if (from_signal || reopen_by_path(&st) != 0) {
            give_up_lost_log();
            return -1;
        }
    }
    if (st.st_size < floor && !from_signal && !restarting)
        restart_after_truncation();
    return 0;
}

static void emit(const char *p, size_t n)
{
    if (__atomic_load_n(&log_broken, __ATOMIC_ACQUIRE))
        return;
    int from_signal = copying || __atomic_load_n(&dying, __ATOMIC_ACQUIRE);
    long long off = -1;
    int how = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    if (how == WRITING && __atomic_load_n(&log_end, __ATOMIC_RELAXED) >= MAP_FROM) {
        __atomic_compare_exchange_n(&mode, &how, MAPPED, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
        how = __atomic_load_n(&mode, __ATOMIC_ACQUIRE);
    }
    int checked = how != MAPPED || from_signal || mapped_check_due();
    if (checked && check_file(from_signal) != 0)
        return;
    if (!copying && __atomic_load_n(&mode, __ATOMIC_ACQUIRE) == MAPPED) {
        copying = 1;
        pthread_mutex_lock(&window_lock);
        int done = mode == MAPPED && copy_mapped(p, n, &off) == 0;
        pthread_mutex_unlock(&window_lock);
        copying = 0;
        if (done)
            return;
        /* The window failed (the file shortened, its descriptor lost): what the
         * check finds decides where the record goes. */
        if (check_file(from_signal) != 0)
            return;
    } else if (!checked && check_file(from_signal) != 0) {
        return;
    }
    if (off < 0)
        off = __atomic_fetch_add(&log_end, (long long)n, __ATOMIC_RELAXED);
    write_at(p, n, off);
}

int ml_log_fault_in_window(const void *addr)
{
    uintptr_t a = (uintptr_t)addr, w = (uintptr_t)window;
    if (!copying || !window || a < w || a >= w + (uintptr_t)window_size)
        return 0;
    /* mmap is a plain system call: safe here.  The copy finishes into zeros. */
    if (mmap(window, (size_t)window_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
        MAP_FAILED)
        return 0;
    __atomic_store_n(&window_lost, 1, __ATOMIC_RELEASE);
    return 1;
}

void ml_log_finish(void)
{
    if (log_fd < 0)
        return;
    /* The last records may have gone into the window unchecked: the cut below needs
     * the descriptor to be the log still. */
    if (!__atomic_load_n(&log_broken, __ATOMIC_ACQUIRE) &&
        check_file(copying || __atomic_load_n(&dying, __ATOMIC_ACQUIRE)) != 0)
        return;
    int was_copying = copying;
    copying = 1;
    pthread_mutex_lock(&window_lock);
    __atomic_store_n(&mode, WRITING_ONLY, __ATOMIC_RELEASE);
    drop_window();
    struct stat st;
    long long end = __atomic_load_n(&incomplete_end, __ATOMIC_ACQUIRE);
    if (end < 0 && grown)
        end = __atomic_load_n(&log_end, __ATOMIC_ACQUIRE);
    /* Records after this one (there may be: other atexit work) are written at
     * their offsets and grow the file again.  A file shortened under us since the
     * last record is not made longer. */
    if (end >= 0 && is_our_file(log_fd, &st) && st.st_size >= size_floor()) {
        if (ftruncate(log_fd, end) != 0 && !log_broken)
            report_write_failure(errno, -1);
        __atomic_store_n(&allocated_end, 0, __ATOMIC_RELEASE);
        grown = 0;
    }
    pthread_mutex_unlock(&window_lock);
    copying = was_copying;
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
