/* DWARF line lookups (see srcline.h).  libdw, with libelf, libz, liblzma and libbz2
 * under it, is loaded the first time a finding asks for a line: every other process
 * (nearly all of them) is spared loading and relocating five libraries. */
#include "srcline.h"

#include "real_dlopen.h"

#include <dlfcn.h>
#include <elfutils/libdwfl.h>
#include <pthread.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Dwfl *dwfl;

static struct {
    __typeof__(dwfl_begin) *begin;
    __typeof__(dwfl_report_begin) *report_begin;
    __typeof__(dwfl_linux_proc_report) *linux_proc_report;
    __typeof__(dwfl_report_end) *report_end;
    __typeof__(dwfl_addrmodule) *addrmodule;
    __typeof__(dwfl_module_getsrc) *module_getsrc;
    __typeof__(dwfl_lineinfo) *lineinfo;
} dw;

static char *debuginfo_path;
static Dwfl_Callbacks callbacks = {.debuginfo_path = &debuginfo_path};

/* A function of libdw into slot: 0 if it is not there. */
#define RESOLVE(slot, name) ((*(void **)&(slot) = dlsym(handle, name)) != NULL)

/* 0 once libdw is there; -1 if it cannot be (then lines are left out). */
static int load_libdw(void)
{
    static int state; /* 0 not tried, 1 loaded, -1 missing */
    if (state)
        return state > 0 ? 0 : -1;
    state = -1;
    void *handle = ml_real_dlopen("libdw.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!handle)
        return -1;
    if (!(RESOLVE(dw.begin, "dwfl_begin") && RESOLVE(dw.report_begin, "dwfl_report_begin") &&
          RESOLVE(dw.linux_proc_report, "dwfl_linux_proc_report") && RESOLVE(dw.report_end, "dwfl_report_end") &&
          RESOLVE(dw.addrmodule, "dwfl_addrmodule") && RESOLVE(dw.module_getsrc, "dwfl_module_getsrc") &&
          RESOLVE(dw.lineinfo, "dwfl_lineinfo") && RESOLVE(callbacks.find_elf, "dwfl_linux_proc_find_elf") &&
          RESOLVE(callbacks.find_debuginfo, "dwfl_standard_find_debuginfo")))
        return -1;
    state = 1;
    return 0;
}

/* (Re)reads the process's mappings: objects may have been loaded since. */
static int report_process(void)
{
    if (!dwfl && !(dwfl = dw.begin(&callbacks)))
        return -1;
    dw.report_begin(dwfl);
    int rc = dw.linux_proc_report(dwfl, getpid());
    dw.report_end(dwfl, NULL, NULL);
    return rc;
}

static struct ml_srcline lookup(uintptr_t addr)
{
    struct ml_srcline result = {NULL, 0};
    Dwfl_Module *module = dw.addrmodule(dwfl, addr);
    Dwfl_Line *line = module ? dw.module_getsrc(module, addr) : NULL;
    if (line)
        result.file = dw.lineinfo(line, NULL, &result.line, NULL, NULL, NULL);
    return result;
}

struct ml_srcline ml_srcline(uintptr_t addr)
{
    struct ml_srcline result = {NULL, 0};
    pthread_mutex_lock(&lock);
    ml_own_load_begin(); /* libdw's loads (libelf, libz, its debuginfod client) too */
    if (load_libdw() == 0 && (dwfl || report_process() == 0)) {
        if (!dw.addrmodule(dwfl, addr))
            report_process();
        result = lookup(addr);
    }
    ml_own_load_end();
    pthread_mutex_unlock(&lock);
    return result;
}
