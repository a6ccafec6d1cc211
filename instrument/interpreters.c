/* Interpreter tracking (see interpreters.h). */
#include "interpreters.h"

#include "crash_handler.h"
#include "events.h"
#include "findings.h"
#include "pyapi.h"
#include "registry.h"

#include <stdio.h>
#include <stdlib.h>

static PyObject *on_finalize(PyObject *self, PyObject *unused);

int ml_interp_several;
static PyMethodDef finalize_def = {"modlife_interp_finalize", on_finalize, ML_METH_NOARGS, NULL};

static PyInterpreterState *current_interp(void)
{
    PyThreadState *tstate = ml_py_tstate();
    return tstate ? py.PyThreadState_GetInterpreter(tstate) : NULL;
}

/* Marks the interpreter finalizing; returns 1 the first time. */
static int mark_finalizing(long long *id)
{
    PyInterpreterState *interp = current_interp();
    int first = 0;
    ml_registry_lock();
    struct ml_interp_rec *rec = interp ? ml_interp_find(interp) : NULL;
    if (rec && !rec->finalizing) {
        rec->finalizing = first = 1;
        *id = rec->id;
        ml_crash_note_finalizing(rec->id);
    }
    ml_registry_unlock();
    return first;
}

static PyObject *on_finalize(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    ml_interp_ending();
    py.Py_IncRef(py.none);
    return py.none;
}

void ml_interp_ending(void)
{
    long long id;
    if (!mark_finalizing(&id))
        return;
    int is_main = current_interp() == py.PyInterpreterState_Main();
    ml_event_interp(ML_EVENT_INTERP_FINALIZE, id, is_main);
    if (is_main) /* the subinterpreters destroyed before are gone by now */
        ml_interp_check_outliving(-1);
}

static void register_atexit(void)
{
    PyObject *type, *value, *tb;
    py.PyErr_Fetch(&type, &value, &tb);
    PyObject *atexit = py.PyImport_ImportModule("atexit");
    PyObject *fn = atexit ? py.PyCFunction_NewEx(&finalize_def, NULL, NULL) : NULL;
    PyObject *res = fn ? py.PyObject_CallMethod(atexit, "register", "O", fn) : NULL;
    if (res)
        py.Py_DecRef(res);
    if (fn)
        py.Py_DecRef(fn);
    if (atexit)
        py.Py_DecRef(atexit);
    py.PyErr_Clear();
    py.PyErr_Restore(type, value, tb);
}

long long ml_interp_current(enum ml_interp_context ctx)
{
    PyInterpreterState *interp = current_interp();
    if (!interp)
        return -1;
    long long id = py.PyInterpreterState_GetID(interp);
    int announce = 0, hook_finalize = 0;
    ml_registry_lock();
    struct ml_interp_rec *rec = ml_interp_find(interp);
    if (!rec || rec->id != id) { /* new, or a new interpreter at a reused address */
        rec = ml_interp_add(interp, id);
        announce = 1;
    }
    if (rec && ctx == ML_INTERP_IMPORTING && !rec->atexit_registered)
        rec->atexit_registered = hook_finalize = 1;
    ml_registry_unlock();
    if (announce && interp != py.PyInterpreterState_Main())
        __atomic_store_n(&ml_interp_several, 1, __ATOMIC_RELEASE);
    if (announce)
        ml_event_interp(ML_EVENT_INTERP_CREATE, id, interp == py.PyInterpreterState_Main());
    if (hook_finalize)
        register_atexit();
    return id;
}

void ml_interp_announce(enum ml_interp_context ctx)
{
    (void)ml_interp_current(ctx);
}

PyObject *ml_interp_function(PyMethodDef *def)
{
    PyInterpreterState *interp = current_interp();
    if (!interp)
        return NULL;
    ml_registry_lock();
    struct ml_interp_rec *rec = ml_interp_find(interp);
    PyObject *fn = rec ? rec->function : NULL;
    ml_registry_unlock();
    if (fn || !rec)
        return fn;
    fn = py.PyCFunction_NewEx(def, NULL, NULL);
    ml_registry_lock();
    rec = ml_interp_find(interp); /* still ours: we hold this interpreter's GIL */
    if (rec)
        rec->function = fn;
    ml_registry_unlock();
    return fn;
}

/* module-outlives-interpreter.  A module is known dead only through its m_free,
 * which is ours for every multi-phase definition (but one whose create slot may
 * make other objects and that has no m_free).  Single-phase modules are left out:
 * CPython keeps their definitions and copies (m_copy) for later imports itself. */
#define OUTLIVED_MAX 16
#define LIVE_MAX 256

struct outliving {
    long long ended;           /* the interpreter that just ended, or -1: any not alive */
    long long live[LIVE_MAX];
    int live_count;
    struct ml_module_rec found[OUTLIVED_MAX];
    char holder[OUTLIVED_MAX][128];
    const void *leaky_dealloc[OUTLIVED_MAX]; /* why the holder lives on, if known */
    int count;
};

/* The ids of the interpreters alive now; 0 if there are too many to tell. */
static int collect_live(struct outliving *o)
{
    o->live_count = 0;
    for (PyInterpreterState *i = py.PyInterpreterState_Head(); i; i = py.PyInterpreterState_Next(i)) {
        if (o->live_count == LIVE_MAX)
            return 0;
        o->live[o->live_count++] = py.PyInterpreterState_GetID(i);
    }
    return 1;
}

static int ended(const struct outliving *o, long long interp)
{
    if (o->ended >= 0)
        return interp == o->ended;
    for (int i = 0; i < o->live_count; i++)
        if (o->live[i] == interp)
            return 0;
    return 1;
}

static void collect_module(struct ml_module_rec *m, void *arg)
{
    struct outliving *o = arg;
    const struct ml_def_rec *def = m->def;
    if (o->count == OUTLIVED_MAX || m->outlived || m->phase >= ML_MOD_FREED || m->interp <= 0 || !def ||
        !def->multiphase || (def->has_create && !def->orig_free) || !ended(o, m->interp))
        return; /* the main interpreter's modules live until exit */
    m->outlived = 1;
    o->holder[o->count][0] = '\0';
    o->found[o->count++] = *m;
}

/* A heap type made with the module (PyType_FromModuleAndSpec) holds it. */
static void find_holder(struct ml_type_rec *t, void *arg)
{
    struct outliving *o = arg;
    for (int i = 0; t->alive && !t->freed && t->module && i < o->count; i++)
        if (t->module == o->found[i].module && (!o->holder[i][0] || (!o->leaky_dealloc[i] && t->leaky_dealloc))) {
            snprintf(o->holder[i], sizeof o->holder[i], "%s", t->qualname ? t->qualname : "?");
            o->leaky_dealloc[i] = t->leaky_dealloc;
        }
}

static void report_outliving(const struct ml_module_rec *m, const char *holder, const void *leaky_dealloc)
{
    /* What holds it is not known, and it is found wherever the check runs (when
     * Py_EndInterpreter returns, at the main interpreter's finalization, at exit):
     * the report points at where the module was made. */
    struct ml_stack created;
    ml_saved_stack_native(&m->created, &created);
    struct ml_finding f = {.kind = ML_MODULE_OUTLIVES_INTERPRETER, .access = &created};
    ml_finding_set_module(&f, m);
    char with[192] = "";
    if (holder[0])
        snprintf(with, sizeof with, ", with its heap type '%s' (a type made with PyType_FromModuleAndSpec holds "
                 "its module)", holder);
    char why[384] = "a reference from outside the interpreter (a C global, a leaked object) keeps them";
    if (leaky_dealloc) {
        /* The type's instances leaked references to it: that bug is what to fix. */
        f.cause_kind = "dealloc-missing-type-decref";
        ml_function_name(leaky_dealloc, f.cause_function, sizeof f.cause_function);
        snprintf(why, sizeof why, "its instances leaked references to the type: tp_dealloc %s does not Py_DECREF "
                 "its type (dealloc-missing-type-decref)", f.cause_function);
        snprintf(f.fix_buf, sizeof f.fix_buf,
                 "Fix the dealloc-missing-type-decref of tp_dealloc %s (Py_DECREF(tp) after tp->tp_free(self)): the "
                 "references it leaks keep the type, and the module it holds, alive past the interpreter.",
                 f.cause_function);
        f.fix = f.fix_buf;
    }
    snprintf(f.message, sizeof f.message,
             "module '%s' (instance #%llu) of interpreter %lld and its state are still alive after the interpreter "
             "ended%s: %s", f.module ? f.module : "?", m->instance, m->interp, with, why);
    ml_finding_report(&f);
}

void ml_interp_check_outliving(long long interp)
{
    if (!__atomic_load_n(&ml_interp_several, __ATOMIC_ACQUIRE) ||
        !ml_finding_enabled(ML_MODULE_OUTLIVES_INTERPRETER))
        return;
    struct outliving *o = calloc(1, sizeof *o);
    if (!o)
        return;
    o->ended = interp;
    if (interp >= 0 || collect_live(o)) {
        ml_registry_lock();
        ml_each_module(collect_module, o);
        if (o->count)
            ml_each_type(find_holder, o);
        ml_registry_unlock();
    }
    for (int i = 0; i < o->count; i++)
        report_outliving(&o->found[i], o->holder[i], o->leaky_dealloc[i]);
    free(o);
}

/* At exit: subinterpreters that ended unseen (3.13's _interpreters, a static
 * libpython) after the main interpreter's finalization checked. */
static void check_outliving_at_exit(void)
{
    ml_interp_check_outliving(-1);
}

__attribute__((constructor)) static void register_exit_check(void)
{
    ml_findings_at_exit(check_outliving_at_exit);
}
