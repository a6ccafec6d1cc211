/* Unit test of the stack table (instrument/stack_table.c): a stack is interned once
 * whatever the number of records naming it, told apart from stacks that differ in a
 * frame, the depth or the Python text; its "stack" record is written once per log,
 * again after the log was cut or in a forked child.  The log writer is replaced by a
 * recorder here, and the frame writer it is handed is one. */
#include "log_writer.h"
#include "stack_table.h"

#include "harness.h"

#include <stdint.h>
#include <stdlib.h>

static char written[8][256];
static int records;

void ml_record_begin(struct ml_record *r, enum ml_event event)
{
    json_init(&r->j, r->buf, sizeof r->buf - 1);
    json_begin_object(&r->j);
    json_kv_string(&r->j, "event", ml_event_name(event));
}

void ml_record_end(struct ml_record *r)
{
    json_end_object(&r->j);
    r->buf[r->j.len] = '\0';
    if (records < 8) {
        size_t n = r->j.len < sizeof written[0] - 1 ? r->j.len : sizeof written[0] - 1;
        memcpy(written[records], r->buf, n);
        written[records][n] = '\0';
    }
    records++;
}

/* The frame writer the stack table is handed (events.c gives it stack.c's). */
static void record_frames(struct json *j, void *const *ips, int depth, const char *python)
{
    json_kv_int(j, "depth", depth);
    json_kv_hex(j, "top", depth ? (uintptr_t)ips[0] : 0);
    json_kv_string(j, "python", python);
}

static struct ml_stack stack_of(int depth, uintptr_t base)
{
    struct ml_stack s;
    s.depth = depth;
    for (int i = 0; i < depth; i++)
        s.ips[i] = (void *)(base + (uintptr_t)i * 0x10);
    return s;
}

/* "stack_id" written for e, and the record written before it, if any. */
static const char *write_id(const struct ml_stack_entry *e, char *out, size_t size)
{
    struct json j;
    json_init(&j, out, size - 1);
    json_begin_object(&j);
    ml_stack_entry_write_id(&j, e, record_frames);
    json_end_object(&j);
    out[j.len] = '\0';
    return out;
}

int main(void)
{
    struct ml_stack a = stack_of(5, 0x400000), a2 = stack_of(5, 0x400000);
    struct ml_stack deeper = stack_of(6, 0x400000), other = stack_of(5, 0x400000);
    other.ips[4] = (void *)0x999999;
    const char *py = "app.py\t3\t<module>\n";

    const struct ml_stack_entry *e = ml_stack_intern(&a, py);
    CHECK(e != NULL);
    CHECK(ml_stack_intern(&a2, "app.py\t3\t<module>\n") == e); /* same frames, another buffer */
    CHECK(ml_stack_intern(&a, NULL) != e && ml_stack_intern(&a, NULL) == ml_stack_intern(&a, NULL));
    CHECK(ml_stack_intern(&a, "") != ml_stack_intern(&a, NULL));
    CHECK(ml_stack_intern(&a, "app.py\t4\t<module>\n") != e);
    CHECK(ml_stack_intern(&deeper, py) != e && ml_stack_intern(&other, py) != e);

    void *const *ips;
    int depth;
    const char *python;
    ml_stack_entry_frames(e, &ips, &depth, &python);
    CHECK_INT(depth, 5);
    CHECK(ips != (void *const *)a.ips && ips[0] == a.ips[0] && ips[4] == a.ips[4]);
    CHECK(python != py && python && !strcmp(python, py));

    /* Written once per log, first its record. */
    char out[128];
    CHECK_STR(write_id(e, out, sizeof out), "{\"stack_id\":1}");
    CHECK_INT(records, 1);
    CHECK_STR(written[0], "{\"event\":\"stack\",\"id\":1,\"depth\":5,\"top\":\"0x400000\","
                          "\"python\":\"app.py\\u00093\\u0009<module>\\u000a\"}");
    CHECK_STR(write_id(e, out, sizeof out), "{\"stack_id\":1}");
    CHECK_INT(records, 1);
    const struct ml_stack_entry *d = ml_stack_intern(&deeper, NULL);
    CHECK_STR(write_id(d, out, sizeof out), "{\"stack_id\":2}");
    CHECK_INT(records, 2);
    CHECK_STR(written[1], "{\"event\":\"stack\",\"id\":2,\"depth\":6,\"top\":\"0x400000\",\"python\":null}");

    /* A log cut under the process: written again when next named, ids go on. */
    ml_stack_table_new_log();
    CHECK_STR(write_id(e, out, sizeof out), "{\"stack_id\":3}");
    CHECK_INT(records, 3);
    CHECK_STR(write_id(e, out, sizeof out), "{\"stack_id\":3}");
    CHECK_INT(records, 3);

    /* A forked child's log is new: ids from 1 again. */
    ml_stack_table_atfork_prepare();
    ml_stack_table_atfork_child();
    CHECK_STR(write_id(d, out, sizeof out), "{\"stack_id\":1}");
    CHECK_STR(write_id(e, out, sizeof out), "{\"stack_id\":2}");
    CHECK_INT(records, 5);
    ml_stack_table_atfork_prepare();
    ml_stack_table_atfork_parent();
    CHECK(ml_stack_intern(&a, py) == e); /* the lock was given back */

    /* Many distinct stacks (a loop of type creations from many places): each kept,
     * each found again after the table grew. */
    enum { MANY = 5000 };
    static const struct ml_stack_entry *many[MANY];
    int lost = 0, mixed = 0;
    for (int i = 0; i < MANY; i++) {
        struct ml_stack s = stack_of(1 + i % 40, 0x500000 + (uintptr_t)i * 0x1000);
        lost += !(many[i] = ml_stack_intern(&s, i % 3 ? py : NULL));
    }
    for (int i = 0; i < MANY; i++) {
        struct ml_stack s = stack_of(1 + i % 40, 0x500000 + (uintptr_t)i * 0x1000);
        mixed += ml_stack_intern(&s, i % 3 ? py : NULL) != many[i];
    }
    CHECK_INT(lost, 0);
    CHECK_INT(mixed, 0);
    CHECK(ml_stack_intern(&a, py) == e);
    return harness_done("test_stack_table");
}
