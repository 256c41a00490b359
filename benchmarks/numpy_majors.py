"""A model saved under one numpy major loads under the other: numpy 2.x and numpy 1.x (>= 1.24).

    python benchmarks/numpy_majors.py --other /tmp/np126/bin/python --other-root /tmp/im2vec-np1 \\
        [--other-path /tmp/np_1.24.4] [--dir /tmp/numpy-majors]

Not a test (tests/test_numpy_portable.py checks the pickle's contents under the suite's numpy): the
other interpreter needs a virtual environment that only the network builds, e.g. (Python 3.11)::

    python3.11 -m venv /tmp/np126
    /tmp/np126/bin/pip install numpy==1.26.4 scipy==1.13.1 gensim==4.3.3 'scikit-learn<1.6' Cython \\
        'setuptools>=77' wheel click tqdm threadpoolctl smart_open
    git archive HEAD | tar -x -C /tmp/im2vec-np1     # a copy of the package, its kernel built there:
    (cd /tmp/im2vec-np1 && /tmp/np126/bin/python setup.py build_ext --inplace)
    /tmp/np126/bin/pip install --no-deps --target /tmp/np_1.24.4 numpy==1.24.4   # optional: numpy 1.24
                                                                                  # through --other-path

(the kernel built against numpy 1.26 runs under 1.24: numpy >= 1.25 builds for older numpy by default).
Each interpreter saves a small model three ways in its own folder under DIR: ``save(path)``,
``save(handle)`` and numpy's own pickle of it (``pickle.dump``, what both saves wrote before they
pickled numpy's objects portably, see ``Im2Vec._saved_portable``); then each interpreter loads every
file the other and itself wrote. A load is "ok" when the loaded model's vectors are the saver's and
its random generator draws what the saver's drew after the save. Prints one line per load; numpy's own
pickle from numpy 2 is expected to fail under numpy 1.x (the reference row).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import json, pickle, sys, warnings
import numpy as np
warnings.simplefilter("ignore")
from gensim_im2vec import Im2Vec
what, folder = sys.argv[1], sys.argv[2]
if what == "save":
    rng = np.random.default_rng(0)
    keys = [f"img:{i}" for i in range(60)]
    feats = dict(zip(keys, rng.normal(size=(60, 8)).astype(np.float32)))
    docs = [[keys[i], f"class{i % 4}", "photo"] for i in range(50)]
    m = Im2Vec(docs, image_features=feats, space_readout=0.5, vector_size=16, sg=1, min_count=1, workers=1,
               seed=1, epochs=2)
    m.save(folder + "/path.model")
    with open(folder + "/handle.pkl", "wb") as f:
        m.save(f)
    with open(folder + "/numpy.pkl", "wb") as f:
        pickle.dump(m, f, protocol=4)
    np.save(folder + "/vectors.npy", m.wv.vectors)
    np.save(folder + "/draws.npy", m.random.randint(0, 2**31, 16))
    print(json.dumps({"numpy": np.__version__}))
else:
    out = {}
    for name in ("path.model", "handle.pkl", "numpy.pkl"):
        try:
            if name == "path.model":
                m = Im2Vec.load(folder + "/" + name)
            else:
                with open(folder + "/" + name, "rb") as f:
                    m = pickle.load(f)
            same = (np.array_equal(m.wv.vectors, np.load(folder + "/vectors.npy"))
                    and m.random.randint(0, 2**31, 16).tolist() == np.load(folder + "/draws.npy").tolist())
            out[name] = "ok" if same else "loaded, but not the saved model"
        except Exception as e:
            out[name] = f"FAILED {type(e).__name__}: {e}"[:300]
    print(json.dumps({"numpy": np.__version__, "loads": out}))
"""


def _run(python: str, root: str, extra: str | None, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (extra, root) if p), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([python, "-c", _CHILD, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{python} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--other", required=True, help="the python of the other numpy major's environment")
    parser.add_argument("--other-root", required=True, help="a copy of the package whose kernel it built")
    parser.add_argument("--other-path", help="a folder put first on its PYTHONPATH (another numpy)")
    parser.add_argument("--dir", default="/tmp/numpy-majors")
    a = parser.parse_args()
    here = (sys.executable, str(Path(__file__).resolve().parent.parent), None)
    there = (a.other, a.other_root, a.other_path)
    saved = {}
    for tag, (python, root, extra) in (("this", here), ("other", there)):
        folder = os.path.join(a.dir, tag)
        os.makedirs(folder, exist_ok=True)
        saved[tag] = (folder, _run(python, root, extra, "save", folder)["numpy"])
    for folder, saver in saved.values():
        for python, root, extra in (here, there):
            got = _run(python, root, extra, "load", folder)
            for name, result in got["loads"].items():
                print(f"saved under numpy {saver:7} loaded under numpy {got['numpy']:7} {name:11} {result}")


if __name__ == "__main__":
    main()
