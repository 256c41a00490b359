"""Fixtures shared by several test modules.

Nothing here imports torch, torchvision or PIL at import time: the kernel, model and space tests
run without the vision extra (``tests/test_model.py::test_kernel_and_model_need_no_torch`` proves
it). Fixtures that extract features import the extractor when they are first used.
"""

import numpy as np
import pytest

from gensim_im2vec import Im2Vec

COLOURS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220)}
TAGS = {"red": ["red", "warm", "fire"], "green": ["green", "grass", "leaf"], "blue": ["blue", "sea", "sky"]}


# Debian packages that carry the demo's built-in data (`make system-deps` installs them)
DEMO_PACKAGES = {
    "openclipart-svg": "/usr/share/openclipart/svg",
    "openclipart-png": "/usr/share/openclipart/png",
    "fonts-noto-color-emoji": "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "unicode-cldr-core": "/usr/share/unicode/cldr/common/annotations/en.xml",
    "dict-wn": "/usr/share/dictd/wn.dict.dz",
}


@pytest.fixture(scope="session")
def demo_packages():
    """Skip a test on the demo's real data where its Debian packages or torchvision are missing."""
    import os

    missing = [pkg for pkg, path in DEMO_PACKAGES.items() if not os.path.exists(path)]
    if missing:
        pytest.skip(f"Debian packages missing: {' '.join(missing)} (make system-deps installs them)")
    pytest.importorskip("torchvision", reason="feature extraction needs the [vision] extra")


@pytest.fixture(scope="session")
def query_model(tmp_path_factory):
    """A model trained on features that a tiny random-init CNN extracted from generated images."""
    from PIL import Image, ImageDraw

    from gensim_im2vec.features import FeatureExtractor

    root = tmp_path_factory.mktemp("query")
    rng = np.random.default_rng(0)
    for colour, rgb in COLOURS.items():
        (root / "imgs" / colour).mkdir(parents=True)
        for i in range(6):
            im = Image.new("RGB", (64, 64), tuple(int(v) for v in rng.integers(200, 255, 3)))
            x, y = (int(v) for v in rng.integers(0, 24, 2))
            ImageDraw.Draw(im).rectangle((x, y, x + 36, y + 36), fill=rgb)
            im.save(root / "imgs" / colour / f"{i}.png")
    fx = FeatureExtractor("resnet18", weights=None, num_workers=0, batch_size=8, progress=False,
                          device="cpu")
    store = fx.extract(root / "imgs", root / "store").store
    docs = []
    for key in store.keys:
        colour = key.split(":")[1].split("/")[0]
        docs.append([key, *TAGS[colour]])
    model = Im2Vec(docs * 4, image_features=store, vector_size=16, sg=1, min_count=1, epochs=20, sample=0,
                   workers=1, seed=1, image_context="document")  # every tag pairs with its image
    path = root / "m.model"
    model.save(str(path))
    # an image file never seen in training
    unseen = root / "unseen.png"
    Image.new("RGB", (50, 40), COLOURS["blue"]).save(unseen)
    return model, store, root, path, unseen


@pytest.fixture
def ray_not_reached(monkeypatch):
    """extract_ray must refuse before it starts Ray (before any extraction): starting it fails the test
    (tests/test_distributed.py, tests/test_ray_audit.py)."""
    ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")

    def init(*args, **kwargs):
        raise AssertionError("extract_ray got as far as starting Ray")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)


def ray_in_process(monkeypatch):
    """``(ray, distributed)`` with Ray "started" on 2 CPUs and ``extract_ray``'s parts run in this
    process (:func:`parts_here`); skipped without Ray Data."""
    import pytest

    ray = pytest.importorskip("ray", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
    pytest.importorskip("ray.data", reason="extract_ray needs Ray Data: pip install 'ray[data]'")
    from gensim_im2vec import distributed

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda *a, **k: None)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    monkeypatch.setattr(distributed, "_run_parts", parts_here(lambda item, row: None))
    return ray, distributed


def parts_here(on_part, stop_after=None):
    """A stand-in for ``distributed._run_parts`` (tests/test_ray_audit.py, tests/test_ray_plan.py): the
    actors' own class, run in this process part by part; ``on_part(item, row)`` is told each item
    handed to Ray and the actor's row; ``stop_after=n`` stops after n parts, as a killed driver does
    (the parts finished so far stay, nothing is merged). A part's error fails the run."""
    import logging

    from gensim_im2vec import distributed

    def run(todo, plan, fx_kwargs, extract_kwargs, parts_root, *rest):
        actor = distributed._PartExtractor(fx_kwargs, extract_kwargs, str(parts_root))
        totals = distributed._PartTotals()
        try:
            for n, item in enumerate(todo):
                if stop_after is not None and n == stop_after:
                    raise KeyboardInterrupt
                row = actor({"part": [item["part"]], "items": [item["items"]]})
                if row["error"][0]:
                    raise RuntimeError(str(row["error"][0]))
                on_part(item, row)
                totals.add({k: v[0] for k, v in row.items()})  # (the driver's own sum of the parts' rows)
        finally:  # the actors' log filter belongs in actor processes only
            logging.getLogger("gensim_im2vec.features").removeFilter(distributed._not_part_skip_warning)
        return totals

    return run


class DatasetHere:
    """What ``distributed._run_parts`` uses of a Ray Dataset (``map_batches``, then ``iter_rows``), run in
    this process on the actors' own class (tests/test_ray_stamps.py with Ray, tests/test_leftovers6.py with a
    stand-in ``ray``): the driver's own handling of the parts' rows and errors is what the tests see. `made`,
    when given, is told the actor's constructor arguments."""

    def __init__(self, items: list[dict], made: list[dict] | None = None) -> None:
        self.items, self.made, self.actor = items, made, None

    def map_batches(self, fn, *, fn_constructor_kwargs: dict, **_):
        if self.made is not None:
            self.made.append(fn_constructor_kwargs)
        self.actor = fn(**fn_constructor_kwargs)
        return self

    def iter_rows(self):
        import logging

        from gensim_im2vec import distributed

        try:
            for item in self.items:
                batch = self.actor({"part": [item["part"]], "items": [item["items"]]})
                yield {k: v[0] for k, v in batch.items()}
        finally:  # the actors' log filter belongs in actor processes only
            logging.getLogger("gensim_im2vec.features").removeFilter(distributed._not_part_skip_warning)


class Restarting:
    """A re-iterable corpus written as an iterator: its ``__iter__`` starts over and returns itself."""

    def __init__(self, docs):
        self.docs, self.i = docs, 0

    def __iter__(self):
        self.i = 0
        return self

    def __next__(self):
        if self.i >= len(self.docs):
            raise StopIteration
        self.i += 1
        return self.docs[self.i - 1]
