/* The per-thread slot stack (see slot_context.h). */
#include "slot_context.h"

__thread struct ml_slot_frame *ml_slot_top __attribute__((tls_model("initial-exec")));
