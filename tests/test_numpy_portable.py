"""A saved model loads under numpy 1.x (>= 1.24, the declared floor) and numpy 2.x, whichever saved it.

numpy 2 pickles a ``RandomState`` (gensim's ``Word2Vec.random``) with the bit generator's class, which
numpy 1.x refuses ("... is not a known BitGenerator module."), and arrays through
``numpy._core.multiarray``, which numpy 1.24 and 1.25 lack. These tests run under the suite's numpy
only: they check that the pickle save() writes names neither (benchmarks/numpy_majors.py loads one
under another numpy for real)."""

import copy
import pickle
import pickletools
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from gensim_im2vec.model import Im2Vec
from gensim_im2vec.portable import portable_state

DATA = Path(__file__).parent / "data"
OPTS = dict(vector_size=16, sg=1, min_count=1, workers=1, seed=1, epochs=2)
# what one numpy major pickles and the other does not read (numpy.core: numpy 1.x's own arrays, read by
# numpy 2 through an alias that may not stay)
ONE_MAJOR = ("numpy._core", "numpy.core", "numpy.random._pickle", "numpy.random._mt19937")


def _globals(data: bytes) -> set[str]:
    """The ``module.name`` of every GLOBAL / STACK_GLOBAL opcode of the pickle `data` (its strings
    followed through the memo)."""
    found, memo, strings, last = set(), {}, [], None
    for op, arg, _ in pickletools.genops(data):
        pushed = None
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            pushed = arg
        elif op.name == "MEMOIZE":
            memo[len(memo)] = last
            continue  # (the top of the stack is unchanged)
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = last
            continue
        elif op.name in ("GET", "BINGET", "LONG_BINGET"):
            pushed = memo.get(arg)
        elif op.name == "GLOBAL":
            found.add(arg.replace(" ", "."))
        elif op.name == "STACK_GLOBAL":
            found.add(f"{strings[-2]}.{strings[-1]}")
        if isinstance(pushed, str):
            strings.append(pushed)
        last = pushed
    return found


def _one_major(names: set[str]) -> list[str]:
    return sorted(n for n in names if n.startswith(ONE_MAJOR))


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    keys = [f"img:{i}" for i in range(60)]
    feats = dict(zip(keys, rng.normal(size=(60, 8)).astype(np.float32)))
    docs = [[keys[i], f"class{i % 4}", "photo"] for i in range(50)]
    return Im2Vec(docs, image_features=feats, space_readout=0.5, **OPTS), docs


def test_the_pickle_helper_sees_what_numpy_pickles():
    """_globals finds numpy's own names (else the tests below would pass whatever save wrote)."""
    names = _globals(pickle.dumps([np.random.RandomState(1), np.random.RandomState(2), np.ones(2)], protocol=4))
    assert {"numpy.random._pickle.__randomstate_ctor", "numpy.random._mt19937.MT19937"} <= names
    assert any(n.endswith("multiarray._reconstruct") for n in names)


@pytest.mark.parametrize("to", ["path", "handle"])
def test_the_saved_pickle_names_no_numpy_module_of_one_major(trained, tmp_path, to):
    model, _ = trained
    path = tmp_path / "m.model"
    if to == "path":
        model.save(str(path))
    else:
        with open(path, "wb") as f:
            model.save(f)
    names = _globals(path.read_bytes())
    assert _one_major(names) == []
    assert {"gensim_im2vec.portable._random", "gensim_im2vec.portable._array"} <= names
    assert isinstance(model.random, np.random.RandomState)  # the live model's are left as they were
    assert all(type(v) is np.ndarray for v in model.wv.expandos.values())


def test_a_checkpoint_names_none_either(trained, tmp_path):
    from gensim_im2vec.checkpoint import EpochCheckpoint

    model, docs = trained
    model = copy.deepcopy(model)
    path = tmp_path / "ck.model"
    model.train(docs, total_examples=len(docs), epochs=2, callbacks=[EpochCheckpoint(str(path), epochs=2)])
    assert _one_major(_globals(path.read_bytes())) == []


@pytest.mark.parametrize("to", ["path", "handle"])
def test_a_loaded_model_goes_on_training_bit_for_bit(trained, tmp_path, to):
    """The loaded model's random state is the saved one: the same draws follow, and training it
    further gives the very vectors that a copy through numpy's own pickling (what save wrote before)
    gives."""
    model, docs = trained
    path = tmp_path / "m.model"
    if to == "path":
        model.save(str(path))
        loaded = Im2Vec.load(str(path))
    else:
        with open(path, "wb") as f:
            model.save(f)
        with open(path, "rb") as f:
            loaded = pickle.load(f)
    before = pickle.loads(pickle.dumps(model))
    a, b = loaded.random.get_state(legacy=False), before.random.get_state(legacy=False)
    np.testing.assert_array_equal(a["state"].pop("key"), b["state"].pop("key"))
    assert a == b
    for m in (loaded, before):
        m.train(docs, total_examples=len(docs), epochs=2)
    np.testing.assert_array_equal(loaded.wv.vectors, before.wv.vectors)
    np.testing.assert_array_equal(loaded.W, before.W)
    np.testing.assert_array_equal(loaded.syn1neg, before.syn1neg)
    assert loaded.random.randint(0, 2**31, 8).tolist() == before.random.randint(0, 2**31, 8).tolist()


def test_a_model_with_a_pickled_random_state_still_loads_and_saves_portable(tmp_path):
    """tests/data/old_model holds numpy 2's own pickles (a RandomState, arrays): loaded as before;
    saved again, portable."""
    old = DATA / "old_model" / "m.model"
    assert "numpy.random._pickle.__randomstate_ctor" in _globals(old.read_bytes())
    loaded = Im2Vec.load(str(old))
    assert isinstance(loaded.random, np.random.RandomState)
    draws = copy.deepcopy(loaded.random).randint(0, 2**31, 8)
    loaded.save(str(tmp_path / "m.model"))
    assert _one_major(_globals((tmp_path / "m.model").read_bytes())) == []
    again = Im2Vec.load(str(tmp_path / "m.model"))
    np.testing.assert_array_equal(again.random.randint(0, 2**31, 8), draws)
    np.testing.assert_array_equal(again.wv.vectors, loaded.wv.vectors)


def test_portable_state_round_trips_numpys_objects():
    shared = np.arange(6, dtype=np.int64).reshape(2, 3)
    state = {
        "rs": np.random.RandomState(np.random.PCG64(5)),
        "gen": np.random.default_rng(7),
        "mt": np.random.Generator(np.random.MT19937(3)),
        "bits": np.random.SFC64(9),
        "fortran": np.asfortranarray(np.arange(12, dtype=np.float32).reshape(3, 4)),
        "empty": np.zeros((0, 3), dtype=np.uint32),
        "zero_d": np.array(2.5),
        "flags": np.array([True, False]),
        "words": np.array(["ab", "c"]),
        "scalar": np.float32(0.1),
        "count": np.int64(-3),
        "nested": defaultdict(list, {"a": shared, "t": (shared, 1)}),
        "again": shared,
        "objects": np.array([None, "x"], dtype=object),
        "keys": ["img:1", "img:2"],
    }
    state["rs"].standard_normal()  # (a cached gaussian in the legacy state)
    data = pickle.dumps(portable_state(state), protocol=4)
    assert _one_major(_globals(data)) == ["numpy._core.multiarray._reconstruct"]  # the object array only
    back = pickle.loads(data)
    for name in ("fortran", "empty", "zero_d", "flags", "words", "objects"):
        np.testing.assert_array_equal(back[name], state[name])
        assert back[name].dtype == state[name].dtype and back[name].shape == state[name].shape
    assert back["fortran"].flags.f_contiguous and back["fortran"].flags.writeable
    assert type(back["scalar"]) is np.float32 and back["scalar"] == state["scalar"]
    assert type(back["count"]) is np.int64 and back["count"] == -3
    assert type(back["nested"]) is defaultdict and back["nested"].default_factory is list
    assert back["nested"]["a"] is back["again"] is back["nested"]["t"][0]  # one array, shared again
    assert back["keys"] == state["keys"]
    assert back["rs"].standard_normal(4).tolist() == state["rs"].standard_normal(4).tolist()
    for name in ("gen", "mt"):
        assert back[name].integers(0, 2**62, 4).tolist() == state[name].integers(0, 2**62, 4).tolist()
    assert back["bits"].random_raw(3).tolist() == state["bits"].random_raw(3).tolist()
    assert type(state["rs"]) is np.random.RandomState and type(state["fortran"]) is np.ndarray  # left as they were


@pytest.mark.parametrize("err", [
    ValueError("<class 'numpy.random._mt19937.MT19937'> is not a known BitGenerator module."),
    ModuleNotFoundError("No module named 'numpy._core'", name="numpy._core"),
])
def test_a_numpy_2_file_of_an_earlier_version_under_numpy_1_names_the_fix(err):
    """What numpy 1.x raises on such a file (benchmarks/numpy_majors.py shows it raised for real)."""
    from gensim_im2vec.model import _unloadable

    message = _unloadable(str(DATA / "old_model" / "m.model"), err)
    assert "saved under numpy 2 by an earlier version" in message
    assert "Load it under numpy 2 and save it again there" in message


def test_numpys_subclasses_of_python_types_are_stood_in_for_too():
    """np.float64, np.complex128, np.str_ and np.bytes_ are float, complex, str and bytes to isinstance,
    yet pickle through numpy._core.multiarray.scalar: stood in for like every numpy scalar, in a list
    of more than _SCAN_ALL items too, and back with their type."""
    keys = [np.str_(f"img:{i}") for i in range(1500)] + [np.str_("")]
    state = {"sample": np.float64(1e-3), "z": np.complex128(1 + 2j), "b": np.bytes_(b"ab"), "keys": keys,
             "plain": [1.5, "x", b"y", 2j, None, True]}
    data = pickle.dumps(portable_state(state), protocol=4)
    assert _one_major(_globals(data)) == []
    back = pickle.loads(data)
    for name in ("sample", "z", "b"):
        assert type(back[name]) is type(state[name]) and back[name] == state[name]
    assert back["keys"] == keys and {type(k) for k in back["keys"]} == {np.str_}
    assert back["plain"] == state["plain"]


def test_a_model_given_numpy_scalars_and_keys_saves_portable(tmp_path):
    """A model given ``sample=np.float64(...)`` and its images' keys as a NumPy array of str (the model
    keeps them as np.str_): the saved pickle names no numpy module of one major, and loads back."""
    rng = np.random.default_rng(0)
    keys = np.array([f"img:{i}" for i in range(30)])
    docs = [[str(keys[i]), f"class{i % 3}"] for i in range(30)]
    model = Im2Vec(docs, image_features=(keys, rng.normal(size=(30, 8)).astype(np.float32)),
                   **{**OPTS, "sample": np.float64(1e-3)})
    model.save(str(tmp_path / "m.model"))
    assert _one_major(_globals((tmp_path / "m.model").read_bytes())) == []
    loaded = Im2Vec.load(str(tmp_path / "m.model"))
    assert loaded.sample == model.sample and loaded.image_feature_keys == model.image_feature_keys
