/* Interpreters as modlife sees them: each is announced (interp-create) the first
 * time a hook runs in it, and its finalization (interp-finalize) is observed with
 * an atexit callback registered in that interpreter, which runs before its modules
 * are torn down. */
#ifndef MODLIFE_INTERPRETERS_H
#define MODLIFE_INTERPRETERS_H

#include "pyabi.h"

enum ml_interp_context {
    ML_INTERP_ANY,       /* just tell the id */
    ML_INTERP_IMPORTING, /* safe to import atexit and register with it */
};

/* The calling thread's interpreter is announced (interp-create) the first time it
 * is met and, once ctx says importing is safe, its finalization is watched. */
void ml_interp_announce(enum ml_interp_context ctx);

/* The id of the calling thread's interpreter, -1 without a thread state; announced
 * as by ml_interp_announce. */
long long ml_interp_current(enum ml_interp_context ctx);

/* 1 once an interpreter other than the main one was seen: until then no module
 * can be used from another interpreter than its own, and the state lookups skip
 * the check (its thread-state read would double the cost of a lookup). */
extern int ml_interp_several;

/* Py_EndInterpreter is about to run for the calling thread's interpreter. */
void ml_interp_ending(void);

/* module-outlives-interpreter: multi-phase module instances of a subinterpreter
 * that ended, still alive.  interp: the one Py_EndInterpreter just ended, or -1
 * for every subinterpreter no longer alive.  Each module is reported once. */
void ml_interp_check_outliving(long long interp);

/* A function object of this interpreter for def, made once per interpreter
 * (objects must not be shared between interpreters).  Borrowed; NULL on failure. */
PyObject *ml_interp_function(PyMethodDef *def);

#endif
