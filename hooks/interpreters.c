/* Interpreter phases: subinterpreters that extension code starts and ends
 * (e.g. _testcapi.run_in_subinterp, _xxsubinterpreters before 3.12).  Others are
 * found the first time a hook runs in them (instrument/interpreters.c). */
#include "hooks.h"

#include "../instrument/interpreters.h"
#include "../instrument/pyapi.h"

PyThreadState *ml_hook_Py_NewInterpreter(void)
{
    PyThreadState *tstate = py.Py_NewInterpreter();
    if (tstate)
        ml_interp_announce(ML_INTERP_IMPORTING);
    return tstate;
}

void ml_hook_Py_EndInterpreter(PyThreadState *tstate)
{
    long long id = ml_interp_current(ML_INTERP_ANY);
    ml_interp_ending();
    py.Py_EndInterpreter(tstate);
    /* Its modules were freed by now, unless something outside it holds them. */
    ml_interp_check_outliving(id);
}
