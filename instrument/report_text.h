/* The stderr report of a finding, in one fixed format after AddressSanitizer's:
 * a headline with the kind, the access stack, the stacks that explain it, the rule
 * and a SUMMARY line.  Written with write(2), no stdio. */
#ifndef MODLIFE_REPORT_TEXT_H
#define MODLIFE_REPORT_TEXT_H

#include "findings.h"

void ml_report_text(const struct ml_finding *f, const struct ml_stack *access);

/* fork: the thread that was reporting is not in the child; its report lock is free. */
void ml_report_text_atfork_child(void);

#endif
