"""Exercise the example module, then drop it so its teardown is recorded too."""
import gc
import sys

import example

c = example.new_counter()
c.bump()
c.bump()
print("example: counter at", c.bump(), "after", example.created(), "counter(s) made")
del c
del sys.modules["example"], example
gc.collect()
print("example: module dropped")
