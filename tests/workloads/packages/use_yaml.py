"""python3-yaml: the LibYAML bindings of yaml._yaml (CLoader, CDumper, events)."""
import yaml

data = {"name": "modlife", "list": [1, 2.5, None, True], "nested": {"a": [{"b": "c"}]}}
text = yaml.dump(data, Dumper=yaml.CDumper, sort_keys=True)
print(text, end="")
print(yaml.load(text, Loader=yaml.CLoader) == data)
print([type(e).__name__ for e in yaml.parse("- a\n- b\n", Loader=yaml.CLoader)])
print(list(yaml.load_all("--- 1\n--- [2, 3]\n", Loader=yaml.CSafeLoader)))
try:
    yaml.load("a: [b", Loader=yaml.CLoader)
except yaml.YAMLError as e:
    print("error", type(e).__name__)

# Cython's opt-out of isolation: one module object per process, so a second import
# gets the same object and another interpreter gets an ImportError.
import importlib, sys, _testcapi
first = sys.modules.pop("yaml._yaml")
print(importlib.import_module("yaml._yaml") is first, _testcapi.run_in_subinterp("import yaml._yaml"))
