/* Unit test of ml_terminal_text: what a name in a stderr report becomes - escape
 * sequences, control and invisible characters, bytes that are not UTF-8 - and a
 * buffer too small for the whole. */
#include "visible_text.h"

#include "harness.h"

#include <stdio.h>
#include <string.h>

static void check(const char *s, size_t cap, const char *want, int line)
{
    char buf[256];
    size_t n = ml_terminal_text(buf, cap, s, strlen(s));
    if (harness_check_str(buf, want, __FILE__, line, "ml_terminal_text"))
        harness_check_int((long long)n, (long long)strlen(want), __FILE__, line, "its length");
}

int main(void)
{
    check("plain.Name_1 <!--<script>\"'%DATA%", 256, "plain.Name_1 <!--<script>\"'%DATA%", __LINE__);
    check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", 256, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x8d", __LINE__);
    /* clear screen, an OSC 8 hyperlink ended by ESC \ and by BEL, a byte next to NUL, DEL */
    check("\x1b[2J\x1b[H", 256, "\\x1b[2J\\x1b[H", __LINE__);
    check("\x1b]8;;https://e.example/\x1b\\link\x1b]8;;\x07", 256,
          "\\x1b]8;;https://e.example/\\x1b\\\\link\\x1b]8;;\\x07", __LINE__);
    check("a\x01\tb\nc\rd\x7f", 256, "a\\x01\\x09b\\x0ac\\x0dd\\x7f", __LINE__);
    /* bytes that are not UTF-8, one escape each */
    check("m\xff\xfe", 256, "m\\xff\\xfe", __LINE__);
    check("\xc3(\xe2\x82", 256, "\\xc3(\\xe2\\x82", __LINE__);
    check("\xed\xa0\x80", 256, "\\xed\\xa0\\x80", __LINE__);
    /* C1 CSI as a raw byte and as UTF-8; line separator; right-to-left override */
    check("\x9b" "2J", 256, "\\x9b2J", __LINE__);
    check("\xc2\x9b" "2J\xe2\x80\xa8\xe2\x80\xae", 256, "\\u009b2J\\u2028\\u202e", __LINE__);
    /* cut before an escape or a character that does not fit, always terminated */
    check("ab\x1b", 6, "ab", __LINE__);
    check("ab\x1b", 7, "ab\\x1b", __LINE__);
    check("a\xc3\xa9", 3, "a", __LINE__);
    check("abc", 1, "", __LINE__);
    return harness_done("test_visible_text");
}
