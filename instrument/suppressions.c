/* Suppression files (see suppressions.h). */
#include "suppressions.h"

#include "visible_text.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *trim(const char *start, const char *end, size_t *len)
{
    while (start < end && (*start == ' ' || *start == '\t' || *start == '\r'))
        start++;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *len = (size_t)(end - start);
    return start;
}

static int parse_line(struct ml_suppression *out, const char *line, size_t len, const char *file,
                      int number, int (*is_kind)(const char *), char *err, size_t err_size)
{
    const char *colon = memchr(line, ':', len);
    size_t kind_len, pattern_len;
    const char *kind = colon ? trim(line, colon, &kind_len) : NULL;
    const char *pattern = colon ? trim(colon + 1, line + len, &pattern_len) : NULL;
    if (!colon || !kind_len || !pattern_len) {
        snprintf(err, err_size, "%s:%d: expected kind:pattern, got '%s'", file, number,
                 ml_visible(line, len).text);
        return -1;
    }
    if (kind_len >= sizeof out->kind || pattern_len >= sizeof out->pattern) {
        snprintf(err, err_size, "%s:%d: kind or pattern too long", file, number);
        return -1;
    }
    memcpy(out->kind, kind, kind_len);
    out->kind[kind_len] = '\0';
    memcpy(out->pattern, pattern, pattern_len);
    out->pattern[pattern_len] = '\0';
    out->hits = 0;
    if (strcmp(out->kind, "*") != 0 && !is_kind(out->kind)) {
        snprintf(err, err_size, "%s:%d: unknown finding kind '%s' (see libmodlife(7) for the kinds, or use *)",
                 file, number, ml_visible(out->kind, strlen(out->kind)).text);
        return -1;
    }
    return 0;
}

int ml_suppressions_parse(struct ml_suppressions *s, const char *text, const char *file,
                          int (*is_kind)(const char *), char *err, size_t err_size)
{
    memset(s, 0, sizeof *s);
    size_t cap = 0;
    int number = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        number++;
        const char *hash = memchr(p, '#', (size_t)(end - p));
        size_t len;
        const char *line = trim(p, hash ? hash : end, &len);
        if (len) {
            if (s->count == cap) {
                cap = cap ? cap * 2 : 16;
                struct ml_suppression *grown = realloc(s->items, cap * sizeof *grown);
                if (!grown) {
                    snprintf(err, err_size, "%s: out of memory", file);
                    ml_suppressions_free(s);
                    return -1;
                }
                s->items = grown;
            }
            if (parse_line(&s->items[s->count], line, len, file, number, is_kind, err, err_size) != 0) {
                ml_suppressions_free(s);
                return -1;
            }
            s->count++;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just after. */
static char *read_regular_file(const char *path, size_t *len, char *err, size_t err_size)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, err_size, "cannot read the suppressions file '%s': %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > ML_SUPPRESSIONS_MAX_SIZE) {
        if (S_ISREG(st.st_mode))
            snprintf(err, err_size, "the suppressions file '%s' is larger than 1 MiB: " ML_SUPPRESSIONS_WANTED
                     " of at most 1 MiB", path);
        else
            snprintf(err, err_size, "the suppressions file '%s' is %s: " ML_SUPPRESSIONS_WANTED, path,
                     file_kind(st.st_mode));
        close(fd);
        return NULL;
    }
    /* A file that grows meanwhile is read as fstat saw it. */
    size_t size = (size_t)st.st_size;
    char *text = malloc(size + 1);
    ssize_t n = 0;
    *len = 0;
    while (text && *len < size && ((n = read(fd, text + *len, size - *len)) > 0 || (n < 0 && errno == EINTR)))
        *len += n > 0 ? (size_t)n : 0;
    int error = errno;
    close(fd);
    if (!text || n < 0) {
        if (!text)
            snprintf(err, err_size, "%s: out of memory", path);
        else
            snprintf(err, err_size, "cannot read the suppressions file '%s': %s", path, strerror(error));
        free(text);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

int ml_suppressions_check_text(const char *text, size_t len, const char *file, char *err, size_t err_size)
{
    int number = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n')
            number++;
        else if (c == 0 || (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            if (c == 0)
                snprintf(err, err_size, "%s:%d: a NUL byte: " ML_SUPPRESSIONS_WANTED, file, number);
            else
                snprintf(err, err_size, "%s:%d: byte 0x%02x is not text: " ML_SUPPRESSIONS_WANTED, file, number, c);
            return -1;
        }
    }
    return 0;
}

int ml_suppressions_load(struct ml_suppressions *s, const char *path, int (*is_kind)(const char *),
                         char *err, size_t err_size)
{
    size_t len;
    char *text = read_regular_file(path, &len, err, err_size);
    if (!text)
        return -1;
    int rc = ml_suppressions_check_text(text, len, path, err, err_size);
    if (rc == 0)
        rc = ml_suppressions_parse(s, text, path, is_kind, err, err_size);
    free(text);
    return rc;
}

struct ml_suppression *ml_suppressions_match(struct ml_suppressions *s, const char *kind,
                                             const char *const *names, size_t count)
{
    for (size_t i = 0; i < s->count; i++) {
        struct ml_suppression *sup = &s->items[i];
        if (strcmp(sup->kind, "*") != 0 && strcmp(sup->kind, kind) != 0)
            continue;
        for (size_t k = 0; k < count; k++) {
            if (!names[k])
                continue;
            /* An object file matches by its path or by its name alone. */
            const char *slash = strrchr(names[k], '/');
            if (fnmatch(sup->pattern, names[k], 0) == 0 || (slash && fnmatch(sup->pattern, slash + 1, 0) == 0)) {
                sup->hits++;
                return sup;
            }
        }
    }
    return NULL;
}

void ml_suppressions_free(struct ml_suppressions *s)
{
    free(s->items);
    s->items = NULL;
    s->count = 0;
}
