"""One worker and one seed train the same model bit for bit, in another process too: what makes
``im2vec demo --workers 1`` repeatable (README). Two or more workers are not repeatable: jobs run
side by side and each trains from a copy of W that lacks the others' changes (docs/kernel.md)."""

import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from gensim_im2vec import Im2Vec

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(60)]
    features = {f"img:{i}": rng.normal(size=24).astype(np.float32) for i in range(300)}
    docs = [[f"img:{i}", *rng.choice(words, 4)] for i in range(300)]
    docs += [list(rng.choice(words, 8)) for _ in range(300)]  # text: the words train too
    model = Im2Vec(docs, image_features=features, vector_size=16, min_count=1, epochs=3, sample=0,
                   workers=1, seed=1)
    np.savez(sys.argv[1], W=model.W, vectors=model.wv.vectors, keys=np.array(model.wv.index_to_key))
""")


def _train_in_a_process(path, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], check=True, env=env, timeout=300)
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def test_one_worker_trains_the_same_model_in_two_processes(tmp_path):
    a = _train_in_a_process(tmp_path / "a.npz", "1")
    b = _train_in_a_process(tmp_path / "b.npz", "2")  # another string hash: nothing may depend on it
    assert list(a["keys"]) == list(b["keys"])
    assert np.array_equal(a["W"], b["W"])
    assert np.array_equal(a["vectors"], b["vectors"])
    assert not np.allclose(a["W"], 0)  # W trained (a model that learned nothing would match too)
