"""python3-ujson: the ujson C extension."""
import ujson

data = {"a": [1, 2.5, None, True], "b": "text \u00e9", "c": {"d": []}}
text = ujson.dumps(data, sort_keys=True)
print(text, ujson.loads(text) == data)
print(ujson.dumps([1, 2], indent=2), ujson.loads("[1e3, -0.5]"))
try:
    ujson.loads("[1,")
except ValueError as e:
    print("error", type(e).__name__)
