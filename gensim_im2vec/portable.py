"""numpy objects pickled in a form that numpy 1.x (>= 1.24) and numpy 2.x both read back.

numpy pickles its objects through module paths and constructors of the numpy that writes them, and
the two majors do not read each other's:

* an array or a numpy scalar pickled by numpy 2 names ``numpy._core.multiarray`` (``_reconstruct``,
  ``scalar``), a module numpy 1.24 and 1.25 do not have (1.26 has it as an alias of ``numpy.core``);
* a ``RandomState``, ``Generator`` or bit generator pickled by numpy 2 gives
  ``numpy.random._pickle``'s constructors the bit generator's class, where numpy 1.x takes only its
  name: ``ValueError: <class 'numpy.random._mt19937.MT19937'> is not a known BitGenerator module.``
  on every numpy 1.x.

:func:`portable_state` replaces them in a pickled object's state by stand-ins that pickle as a call to
a function of this module with plain values: an array's dtype string (``"<f4"``), shape and raw bytes;
a random generator's ``state`` (``RandomState.get_state(legacy=False)``, ``bit_generator.state``: its
bit generator's name and ints or arrays), from which the functions build the same generator again,
in the same state (the same draws follow). The functions' names are written into saved files: they
must keep their names and arguments.

>>> import pickle
>>> rs = np.random.RandomState(3)
>>> state = portable_state({"random": rs, "v": np.arange(3, dtype=np.float32)})
>>> back = pickle.loads(pickle.dumps(state))
>>> back["random"].randint(0, 1000, 3).tolist() == rs.randint(0, 1000, 3).tolist(), back["v"].tolist()
(True, [0.0, 1.0, 2.0])
>>> b"numpy._core" in pickle.dumps(state) or b"numpy.random._pickle" in pickle.dumps(state)
False
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

__all__ = ["portable_state"]

#: Bit generators rebuilt by name (numpy.random has each of them in both majors).
_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
#: The types of values that are no numpy object and hold none: these exactly (``type(v) in _PLAIN``).
#: numpy's float64, complex128, str_ and bytes_ are subclasses of float, complex, str and bytes that
#: pickle through ``numpy._core.multiarray.scalar``: no plain values (a model's ``sample=np.float64(..)``,
#: image keys given as a NumPy array of str).
_PLAIN = frozenset((str, bytes, int, float, complex, bool, type(None)))
#: A dict, list or tuple longer than this whose first value is plain is taken to hold no numpy object
#: (``wv.index_to_key``, ``wv.key_to_index``: not scanned; scanning both took 1 s a million keys here).
_SCAN_ALL = 1000


def _plain_dtype(dtype: np.dtype) -> bool:
    """Whether `dtype` round-trips through its ``dtype.str`` and raw bytes (no objects, no fields)."""
    return not dtype.hasobject and dtype.fields is None and dtype.subdtype is None


class _Array:
    """Stand-in for an array: pickled as ``_array(dtype.str, shape, bytes, fortran)``, its bytes taken
    only then (one array's copy at a time, as numpy's own pickling takes them)."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray) -> None:
        self.a = a

    def __reduce__(self):
        a = self.a
        fortran = bool(a.flags.f_contiguous and not a.flags.c_contiguous)
        return _array, (a.dtype.str, tuple(int(n) for n in a.shape), a.tobytes(order="F" if fortran else "C"),
                        fortran)


class _Scalar:
    __slots__ = ("x",)

    def __init__(self, x: np.generic) -> None:
        self.x = x

    def __reduce__(self):
        return _scalar, (self.x.dtype.str, self.x.tobytes())


class _Random:
    """Stand-in for a ``RandomState`` (`kind` "RandomState"), ``Generator`` or bit generator: pickled
    as ``_random(kind, state)``, `state` its plain state with its arrays stood in for too."""

    __slots__ = ("kind", "state")

    def __init__(self, kind: str, state: dict) -> None:
        self.kind, self.state = kind, state

    def __reduce__(self):
        return _random, (self.kind, self.state)


def _array(dtype: str, shape: tuple, data: bytes, fortran: bool = False) -> np.ndarray:
    """The array :class:`_Array` stood for: its own memory, writable."""
    a = np.frombuffer(data, dtype=np.dtype(dtype)) if len(data) else np.empty(0, dtype=np.dtype(dtype))
    return a.reshape(shape, order="F" if fortran else "C").copy(order="K")


def _scalar(dtype: str, data: bytes) -> np.generic:
    dtype = np.dtype(dtype)
    if not dtype.itemsize:  # (np.str_(""): "<U0", which frombuffer refuses)
        return np.zeros((), dtype=dtype)[()]
    return np.frombuffer(data, dtype=dtype)[0]


def _random(kind: str, state: dict):
    """The generator :class:`_Random` stood for, in the state it had."""
    bit_generator = getattr(np.random, state["bit_generator"])()
    if kind == "RandomState":
        rs = np.random.RandomState(bit_generator)
        rs.set_state(state)  # (the bit generator's state and the legacy gauss cache)
        return rs
    bit_generator.state = state
    return np.random.Generator(bit_generator) if kind == "Generator" else bit_generator


def _stand_in(value, memo: dict):
    """`value` with the numpy objects in it stood in for; `value` itself when it holds none."""
    if type(value) in _PLAIN:
        return value
    key = id(value)
    if key in memo:
        return memo[key][1]
    new = value
    if isinstance(value, np.ndarray):
        if type(value) in (np.ndarray, np.memmap) and _plain_dtype(value.dtype):
            new = _Array(value)
    elif isinstance(value, np.generic):
        if _plain_dtype(value.dtype):
            new = _Scalar(value)
    elif isinstance(value, np.random.RandomState):
        state = value.get_state(legacy=False)
        if state["bit_generator"] in _BIT_GENERATORS:
            new = _Random("RandomState", _stand_in(state, {}))
    elif isinstance(value, np.random.Generator | np.random.BitGenerator):
        bit_generator = value.bit_generator if isinstance(value, np.random.Generator) else value
        state = bit_generator.state
        if type(bit_generator).__name__ in _BIT_GENERATORS and state.get("bit_generator") in _BIT_GENERATORS:
            new = _Random(type(value).__name__ if isinstance(value, np.random.Generator) else "BitGenerator",
                          _stand_in(state, {}))
    elif type(value) in (dict, defaultdict):
        if len(value) <= _SCAN_ALL or type(next(iter(value.values()))) not in _PLAIN:
            items = {k: _stand_in(v, memo) for k, v in value.items()}
            if any(items[k] is not v for k, v in value.items()):
                new = defaultdict(value.default_factory, items) if type(value) is defaultdict else items
    elif type(value) in (list, tuple) and (len(value) <= _SCAN_ALL or type(value[0]) not in _PLAIN):
        items = [_stand_in(v, memo) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            new = type(value)(items)
    elif hasattr(value, "_save_specials") and type(getattr(value, "__dict__", None)) is dict:
        # an object gensim's save walks into (KeyedVectors): a shallow copy, pickled with its own state
        attributes = _stand_in(value.__dict__, memo)
        if attributes is not value.__dict__:
            new = object.__new__(type(value))
            new.__dict__.update(attributes)
    memo[key] = (value, new)  # (value kept alive: ids are not reused while the memo is)
    return new


def portable_state(state: dict) -> dict:
    """`state` (an object's pickled ``__dict__``) with every numpy array of a plain dtype, numpy
    scalar and random generator in it stood in for by one that both numpy majors unpickle (the
    module's docstring): in its values, in the dicts, tuples and lists among them (one of more than
    :data:`_SCAN_ALL` items whose first is a Python str or number, not numpy's, is taken to hold none:
    ``wv.index_to_key`` and ``wv.key_to_index`` are not scanned) and in the
    attributes of the objects gensim's save walks into (``wv``: a shallow copy). An object found twice
    is stood in for by one object (pickled once, shared again on load). `state` and the objects in it
    are left as they are. Arrays of objects or of a structured dtype and generators over a bit
    generator numpy does not name are left to numpy's own pickling."""
    return _stand_in(state, {})
