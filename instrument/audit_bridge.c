/* What the LD_AUDIT entry (audit.c, another namespace) may call in the core. */
#include "engine.h"
#include "../hooks/hook_table.h"

__attribute__((visibility("default"))) void modlife_audit_start(void)
{
    ml_engine_start(ML_ENTRY_AUDIT);
}

__attribute__((visibility("default"))) void *modlife_audit_replacement(const char *symbol)
{
    return ml_engine_active() ? ml_hook_replacement(symbol) : 0;
}

__attribute__((visibility("default"))) void modlife_audit_objects_changed(void)
{
    ml_engine_objects_changed();
}
