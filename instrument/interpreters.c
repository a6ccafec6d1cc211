/* Interpreter tracking (see interpreters.h). */
#include "interpreters.h"

#include "crash_handler.h"
#include "events.h"
#include "pyapi.h"
#include "registry.h"

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
    if (mark_finalizing(&id))
        ml_event_interp(ML_EVENT_INTERP_FINALIZE, id, current_interp() == py.PyInterpreterState_Main());
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
