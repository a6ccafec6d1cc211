"""python3-numpy: arrays, ufuncs, linear algebra, random, pickling and the
C-level dtype and ufunc machinery of numpy.core._multiarray_umath."""
import pickle

import numpy as np

a = np.arange(12, dtype=np.float64).reshape(3, 4)
print(a.sum(), a.mean(axis=0).tolist(), (a @ a.T).trace())
print(np.linalg.det(np.array([[2.0, 1.0], [1.0, 3.0]])).round(6), np.linalg.inv(np.eye(3)).tolist())
rng = np.random.default_rng(1234)
print(rng.integers(0, 100, size=5).tolist(), np.random.RandomState(7).rand(2).round(6).tolist())
s = np.array([(1, 2.5, b"x")], dtype=[("i", "i4"), ("f", "f8"), ("b", "S1")])
print(s.dtype.names, s[0]["f"], pickle.loads(pickle.dumps(s)).tolist())
print(np.fft.fft(np.ones(4)).real.tolist(), np.sort(np.array([3, 1, 2]))[::-1].tolist())
u = np.frompyfunc(lambda x, y: x * 10 + y, 2, 1)
print(u(np.arange(3), 1).tolist(), np.add.reduce(np.arange(5)), np.isnan(np.float32("nan")))
m = np.ma.masked_array([1, 2, 3], mask=[0, 1, 0])
print(m.sum(), np.datetime64("2026-11-25") + np.timedelta64(7, "D"), np.str_("text").upper())
