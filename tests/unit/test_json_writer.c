/* Unit test of the JSON writer: numbers against the C library's printf, strings
 * with every byte that must be escaped, bytes that are not UTF-8 and invisible
 * code points, separators, and a buffer that runs out. */
#include "json_writer.h"

#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static void expect(const char *got, const char *want, int line)
{
    harness_check_str(got, want, __FILE__, line, "json");
}

static void check_string(const char *s, const char *want, int line)
{
    char buf[256];
    struct json j;
    json_init(&j, buf, sizeof buf - 1);
    json_string(&j, s);
    buf[j.len] = '\0';
    expect(buf, want, line);
}

static void check_int(long long v, int line)
{
    char buf[64], want[64];
    struct json j;
    json_init(&j, buf, sizeof buf - 1);
    json_int(&j, v);
    buf[j.len] = '\0';
    snprintf(want, sizeof want, "%lld", v);
    expect(buf, want, line);
}

int main(void)
{
    static const long long ints[] = {0,   1,    9,    10,    11,     99,      100,      101,         999,
                                     1000, 12345, -1, -10,   -99,    -100,    1234567890123LL, LLONG_MAX,
                                     LLONG_MIN, 100000000000000000LL};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        check_int(ints[i], __LINE__);
    for (long long v = -1000; v <= 100000; v += 7)
        check_int(v, __LINE__);

    char buf[256];
    struct json j;
    json_init(&j, buf, sizeof buf - 1);
    json_begin_object(&j);
    json_kv_string(&j, "s", "a\"b\\c\n\x01\x7f" "d");
    json_kv_int(&j, "n", 42);
    json_kv_hex(&j, "h", 0xbeef);
    json_kv_bool(&j, "b", 1);
    json_kv_string(&j, "none", NULL);
    json_key(&j, "list");
    json_begin_array(&j);
    json_int(&j, 1);
    json_string(&j, "x");
    json_end_array(&j);
    json_end_object(&j);
    buf[j.len] = '\0';
    expect(buf, "{\"s\":\"a\\\"b\\\\c\\u000a\\u0001\\u007fd\",\"n\":42,\"h\":\"0xbeef\",\"b\":true,\"none\":null,"
                "\"list\":[1,\"x\"]}", __LINE__);

    /* UTF-8 is kept; every byte that is not part of it becomes U+FFFD. */
    check_string("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d",
                 "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d\"", __LINE__);
    check_string("a\xff\xfe" "b", "\"a\\ufffd\\ufffdb\"", __LINE__);
    check_string("\x80\xbf", "\"\\ufffd\\ufffd\"", __LINE__);         /* stray continuation bytes */
    check_string("x\xc3", "\"x\\ufffd\"", __LINE__);                  /* cut at the end */
    check_string("\xe2\x82" "a", "\"\\ufffd\\ufffda\"", __LINE__);      /* cut in the middle */
    check_string("\xc0\xaf", "\"\\ufffd\\ufffd\"", __LINE__);         /* overlong '/' */
    check_string("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"", __LINE__); /* overlong, 3 bytes */
    check_string("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", __LINE__); /* a surrogate */
    check_string("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", __LINE__); /* > U+10FFFF */
    check_string("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"", __LINE__); /* U+10FFFF */
    /* C1 controls, line separators, bidi formatting: escaped. */
    check_string("\xc2\x9b" "2J\xe2\x80\xa8\xe2\x80\xae\xc2\xa0", "\"\\u009b2J\\u2028\\u202e\xc2\xa0\"", __LINE__);
    check_string("\x1b]8;;x\x1b\\", "\"\\u001b]8;;x\\u001b\\\\\"", __LINE__);

    char small[8];
    json_init(&j, small, sizeof small);
    json_string(&j, "longer than eight");
    CHECK(j.overflow && j.len <= sizeof small); /* a string that does not fit */
    return harness_done("test_json_writer");
}
