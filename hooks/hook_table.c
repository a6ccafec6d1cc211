/* The hook table (see hook_table.h): every C-API function modlife wraps, with the
 * original (resolved at run time into `py`) beside its replacement. */
#include "hook_table.h"

#include "hooks.h"
#include "../instrument/pyapi.h"

#include <string.h>

#define HOOK(name) {#name, (void **)&py.name, (void *)ml_hook_##name}

const struct ml_hook ml_hooks[] = {
    /* modules: hooks/module_create.c */
    HOOK(PyModuleDef_Init),
    HOOK(PyModule_Create2),
    HOOK(PyModule_FromDefAndSpec2),
    /* module state: hooks/module_state.c */
    HOOK(PyModule_GetState),
    HOOK(PyType_GetModule),
    HOOK(PyType_GetModuleState),
    HOOK(PyType_GetModuleByDef),
    /* types: hooks/type_create.c */
    HOOK(PyType_FromSpec),
    HOOK(PyType_FromSpecWithBases),
    HOOK(PyType_FromModuleAndSpec),
    HOOK(PyType_FromMetaclass),
    HOOK(PyType_Ready),
    HOOK(PyModule_AddType),
    HOOK(PyModule_AddObject),
    HOOK(PyModule_AddObjectRef),
    /* allocation: hooks/object_alloc.c */
    HOOK(_PyObject_New),
    HOOK(_PyObject_NewVar),
    HOOK(_PyObject_GC_New),
    HOOK(_PyObject_GC_NewVar),
    /* interpreters: hooks/interpreters.c */
    HOOK(Py_NewInterpreter),
    HOOK(Py_EndInterpreter),
};

const size_t ml_hook_count = sizeof ml_hooks / sizeof ml_hooks[0];

const struct ml_hook *ml_hook_find(const char *symbol)
{
    /* Every hooked name starts with "Py" or "_Py": most are rejected at once. */
    const char *name = symbol[0] == '_' ? symbol + 1 : symbol;
    if (name[0] != 'P' || name[1] != 'y')
        return NULL;
    for (size_t i = 0; i < ml_hook_count; i++)
        if (*ml_hooks[i].original && !strcmp(ml_hooks[i].symbol, symbol))
            return &ml_hooks[i];
    return NULL;
}

void *ml_hook_replacement(const char *symbol)
{
    const struct ml_hook *hook = ml_hook_find(symbol);
    return hook ? hook->replacement : NULL;
}

int ml_hook_patch_target(const char *symbol, struct ml_patch_target *target)
{
    const struct ml_hook *hook = ml_hook_find(symbol);
    if (!hook)
        return 0;
    *target = (struct ml_patch_target){*hook->original, hook->replacement};
    return 1;
}
