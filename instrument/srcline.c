/* DWARF line lookups (see srcline.h). */
#include "srcline.h"

#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Dwfl *dwfl;

static char *debuginfo_path;
static const Dwfl_Callbacks callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* (Re)reads the process's mappings: objects may have been loaded since. */
static int report_process(void)
{
    if (!dwfl && !(dwfl = dwfl_begin(&callbacks)))
        return -1;
    dwfl_report_begin(dwfl);
    int rc = dwfl_linux_proc_report(dwfl, getpid());
    dwfl_report_end(dwfl, NULL, NULL);
    return rc;
}

static struct ml_srcline lookup(uintptr_t addr)
{
    struct ml_srcline result = {NULL, 0};
    Dwfl_Module *module = dwfl_addrmodule(dwfl, addr);
    Dwfl_Line *line = module ? dwfl_module_getsrc(module, addr) : NULL;
    if (line)
        result.file = dwfl_lineinfo(line, NULL, &result.line, NULL, NULL, NULL);
    return result;
}

struct ml_srcline ml_srcline(uintptr_t addr)
{
    struct ml_srcline result = {NULL, 0};
    pthread_mutex_lock(&lock);
    if (dwfl || report_process() == 0) {
        if (!dwfl_addrmodule(dwfl, addr))
            report_process();
        result = lookup(addr);
    }
    pthread_mutex_unlock(&lock);
    return result;
}
