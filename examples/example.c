/* The bundled example: a small isolated extension module in the manner of
 * CPython's Modules/xxlimited.c.  `make example` builds it, runs
 * examples/use_example.py under `modlife run` and shows the lifetime log. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

typedef struct {
    PyObject *Counter_Type; /* a heap type per module instance */
    long created;           /* Counters made by this module instance */
} example_state;

static inline example_state *get_state(PyObject *module)
{
    return (example_state *)PyModule_GetState(module);
}

typedef struct {
    PyObject_HEAD
    long value;
} CounterObject;

static int Counter_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self)); /* a heap type's instances own a reference to it */
    return 0;
}

static void Counter_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *Counter_bump(CounterObject *self, PyObject *unused)
{
    return PyLong_FromLong(++self->value);
}

static PyMethodDef Counter_methods[] = {
    {"bump", (PyCFunction)Counter_bump, METH_NOARGS, "Add one and return the count."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Counter_slots[] = {
    {Py_tp_dealloc, Counter_dealloc},
    {Py_tp_traverse, Counter_traverse},
    {Py_tp_methods, Counter_methods},
    {0, NULL},
};

static PyType_Spec Counter_spec = {
    .name = "example.Counter",
    .basicsize = sizeof(CounterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Counter_slots,
};

static PyObject *new_counter(PyObject *module, PyObject *unused)
{
    example_state *st = get_state(module);
    PyTypeObject *tp = (PyTypeObject *)st->Counter_Type;
    CounterObject *c = PyObject_GC_New(CounterObject, tp);
    if (!c)
        return NULL;
    c->value = 0;
    PyObject_GC_Track(c);
    st->created++;
    return (PyObject *)c;
}

static PyObject *created(PyObject *module, PyObject *unused)
{
    return PyLong_FromLong(get_state(module)->created);
}

static PyMethodDef example_methods[] = {
    {"new_counter", new_counter, METH_NOARGS, "Make a Counter."},
    {"created", created, METH_NOARGS, "How many Counters this module made."},
    {NULL, NULL, 0, NULL},
};

static int example_exec(PyObject *module)
{
    example_state *st = get_state(module);
    st->Counter_Type = PyType_FromModuleAndSpec(module, &Counter_spec, NULL);
    return st->Counter_Type ? 0 : -1;
}

static int example_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(get_state(module)->Counter_Type);
    return 0;
}

static int example_clear(PyObject *module)
{
    Py_CLEAR(get_state(module)->Counter_Type);
    return 0;
}

static void example_free(void *module)
{
    example_clear((PyObject *)module);
}

static PyModuleDef_Slot example_slots[] = {
    {Py_mod_exec, example_exec},
    {0, NULL},
};

static struct PyModuleDef example_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "example",
    .m_doc = "modlife's bundled example of an isolated extension module.",
    .m_size = sizeof(example_state),
    .m_methods = example_methods,
    .m_slots = example_slots,
    .m_traverse = example_traverse,
    .m_clear = example_clear,
    .m_free = example_free,
};

PyMODINIT_FUNC PyInit_example(void)
{
    return PyModuleDef_Init(&example_module);
}
