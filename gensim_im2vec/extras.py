"""The optional dependencies: which extra of gensim-im2vec installs a module, and the error that says so.

``pip install gensim-im2vec`` installs what training, saving, loading and querying by key or by
feature vector need. Feature extraction and image files need the ``vision`` extra (torch,
torchvision, Pillow), the HTML report the ``report`` extra, Ray extraction and the approximate
indexes the ``scale`` extra. A module of an extra that is not installed is refused with the pip
command that installs it:

>>> from gensim_im2vec.extras import missing_extra
>>> err = missing_extra(ModuleNotFoundError("No module named 'torch'", name="torch"), "feature extraction")
>>> print(err)  # doctest: +NORMALIZE_WHITESPACE
feature extraction needs torch, which is not installed: pip install 'gensim-im2vec[vision]' (torch,
torchvision, Pillow). Training, saving, loading and querying by key or feature vector work without it.
>>> err.name
'torch'
"""

from __future__ import annotations

#: The top-level module -> the extra that installs it.
EXTRA = {
    "torch": "vision", "torchvision": "vision", "PIL": "vision",
    "matplotlib": "report", "umap": "report",
    "ray": "scale", "faiss": "scale", "annoy": "scale",
}
#: What each extra installs (as pyproject.toml's [project.optional-dependencies] names it).
CONTENTS = {"vision": "torch, torchvision, Pillow", "report": "matplotlib, umap-learn, Pillow",
            "scale": "Ray Data, faiss, annoy"}
#: A module's distribution where the names differ.
DIST = {"PIL": "Pillow", "umap": "umap-learn", "faiss": "faiss-cpu", "ray": "ray[data]"}


def missing_extra(err: ImportError, what: str) -> ImportError:
    """The error for `err`, a module of an optional extra that is not installed, naming `what` needs it
    and the pip command of its extra.

    Parameters
    ----------
    err : ImportError
        The import's error. Its ``name`` (``"torch"``, ``"torchvision.models"``) picks the extra.
    what : str
        What needs the module, as the message's subject (``"feature extraction"``, ``"im2vec extract"``).

    Returns
    -------
    ImportError
        A :class:`ModuleNotFoundError` with the same ``name`` and the pip command; `err` itself
        when it is not a missing module of an extra (e.g. torch installed but broken), or when its
        message already names the extra.
    """
    top = (getattr(err, "name", None) or "").partition(".")[0]
    extra = EXTRA.get(top)
    if extra is None or not isinstance(err, ModuleNotFoundError) or "gensim-im2vec[" in str(err):
        return err
    tail = (" Training, saving, loading and querying by key or feature vector work without it."
            if extra == "vision" else "")
    return ModuleNotFoundError(
        f"{what} needs {DIST.get(top, top)}, which is not installed: pip install 'gensim-im2vec[{extra}]' "
        f"({CONTENTS[extra]}).{tail}", name=err.name)


def require(modules: tuple[str, ...], what: str) -> None:
    """Refuse, before any work, `what` when a module of `modules` (top-level names, e.g.
    ``("matplotlib", "PIL")``) is not installed: :func:`missing_extra`'s error for the first missing one.

    >>> require(("numpy",), "anything")  # installed: nothing happens
    """
    import importlib.util

    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # (an import hook that refuses the name)
            found = False
        if not found:
            raise missing_extra(ModuleNotFoundError(f"No module named {name!r}", name=name), what)
