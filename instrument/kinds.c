/* The finding kinds (see kinds.h). */
#include "kinds.h"

#include <string.h>

#define KIND_SEVERITY_ERROR 1
#define KIND_SEVERITY_WARNING 0
const struct ml_kind_info ml_kinds[ML_KIND_COUNT] = {
#define ML_KIND(id, name, severity, rule, fix, when) [ML_##id] = {name, KIND_SEVERITY_##severity, rule, fix},
#include "kinds.def"
};
#undef KIND_SEVERITY_ERROR
#undef KIND_SEVERITY_WARNING

int ml_kind_by_name(const char *name)
{
    for (int k = 0; k < ML_KIND_COUNT; k++)
        if (!strcmp(ml_kinds[k].name, name))
            return k;
    return -1;
}

int ml_is_kind(const char *name)
{
    return ml_kind_by_name(name) >= 0;
}
