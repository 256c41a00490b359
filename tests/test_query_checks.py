"""`im2vec query --device/--arch/--weights/--layer`: options the feature extractor refuses end the command before
the prompt, with the extractor's own message (as `im2vec extract` gives it), and nothing is built for
the check. They were reported only when the first image file was typed, after the session had begun."""

from __future__ import annotations

import io

import pytest
from click.testing import CliRunner

from gensim_im2vec import query
from gensim_im2vec.cli import _in_cli_terms, main
from gensim_im2vec.query import PROMPT, QuerySession, query_loop

pytest.importorskip("torchvision", reason="the extractor's checks need the [vision] extra")

BAD = {
    "no such device": ["--device", "banana"],
    "a device not on this machine": ["--device", "cuda:7"],
    "weights the arch does not have": ["--weights", "IMAGENET9K_V9"],
    "an unknown arch": ["--arch", "resnet99"],
    "a checkpoint that is not there": ["--weights", "{root}/missing.pth"],
}


def _extractor_message(model, options: list[str]) -> str:
    """What FeatureExtractor says to these options, built as the model's features were made."""
    from gensim_im2vec.features import FeatureExtractor

    meta = model.image_features_metadata
    kwargs = {"arch": meta["arch"], "weights": None, "device": "cpu"}
    kwargs.update({options[0].lstrip("-"): options[1]})
    with pytest.raises((ValueError, FileNotFoundError)) as e:
        FeatureExtractor(**kwargs, num_workers=0, batch_size=1, progress=False)
    return str(e.value)


@pytest.fixture
def no_extractor(monkeypatch):
    """Building a FeatureExtractor (loading a CNN) fails the test: the checks must not need one."""
    from gensim_im2vec import features

    def built(*args, **kwargs):
        raise AssertionError("a FeatureExtractor was built")

    monkeypatch.setattr(features, "FeatureExtractor", built)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_extractor_options_end_the_command_before_the_prompt(query_model, case, request):
    # was: exit 0, the prompt, answers to words, and "Cannot extract features for image files: device: ..."
    # only when an image file was typed
    model, _, root, path, unseen = query_model
    options = [o.format(root=root) for o in BAD[case]]
    expected = _extractor_message(model, options)
    request.getfixturevalue("no_extractor")
    res = CliRunner().invoke(main, ["query", str(path), *options], input=f"red\n{unseen}\nEXIT\n")
    assert res.exit_code == 1, res.output
    assert res.output == f"Error: cannot extract features for image files: {_in_cli_terms(expected)}\n"
    assert PROMPT not in res.output


def test_the_session_refuses_bad_extractor_options_when_made(query_model):
    model, *_ = query_model
    with pytest.raises(ValueError, match="device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'banana'"):
        QuerySession(model, extractor_options={"device": "banana"})
    out = io.StringIO()
    with pytest.raises(ValueError, match="'resnet18' has no weights 'IMAGENET9K_V9'"):
        query_loop(model, io.StringIO("red\nEXIT\n"), out, extractor_options={"weights": "IMAGENET9K_V9"})
    assert out.getvalue() == ""  # before any prompt
    # a featurizer factory of one's own: the extractor options are not used, so not checked
    QuerySession(model, extractor_options={"device": "banana"}, featurizer_factory=lambda meta: None)


def test_good_or_absent_options_pass_the_checks_without_building_the_extractor(query_model, no_extractor):
    model, _, _, path, _ = query_model
    meta = model.image_features_metadata
    query.check_extractor_options(meta)
    query.check_extractor_options(meta, device="auto", layer="no such layer")  # a layer is checked when built
    query.check_extractor_options({}, weights="IMAGENET9K_V9")  # no arch to check the weights against: at the image
    with pytest.raises(ValueError, match="'alexnet' has no weights 'IMAGENET9K_V9'"):
        query.check_extractor_options(meta, arch="alexnet", weights="IMAGENET9K_V9")
    res = CliRunner().invoke(main, ["query", str(path), "--device", "cpu", "--weights", "none", "--arch", "resnet18"],
                             input="red\nEXIT\n")
    assert res.exit_code == 0, res.output
    assert PROMPT in res.output and "Word: red" in res.output


def test_an_unknown_layer_ends_the_command_before_the_prompt_as_extract_says_it(query_model, no_extractor):
    # was: the prompt, answers to words, and at the first image file the library's message, "Cannot extract
    # features for image files: layer: 'BAD' is not a node of resnet18. ... Hint: use
    # gensim_im2vec.features.layer_names('resnet18') ...", a Python call; `im2vec extract --layer BAD` gives
    # the CLI's message (the likely layers, a shell command that lists them all) and exit 1
    from gensim_im2vec.cli import _layer_error
    from gensim_im2vec.features import LayerNotFoundError, layer_names

    model, _, _, path, unseen = query_model
    res = CliRunner().invoke(main, ["query", str(path), "--layer", "BAD"], input=f"red\n{unseen}\nEXIT\n")
    assert res.exit_code == 1, res.output
    assert PROMPT not in res.output and "Hint: use" not in res.output
    names = layer_names("resnet18")
    assert res.output == f"Error: {_layer_error(LayerNotFoundError('', 'resnet18', 'BAD', names))}\n"
    # another arch's layer is looked up in that arch's graph; a module's name or a Caffe alias is a layer
    res = CliRunner().invoke(main, ["query", str(path), "--arch", "alexnet", "--weights", "none", "--layer", "layer4"],
                             input="EXIT\n")
    assert res.exit_code == 1 and "--layer: 'layer4' is not a node of alexnet" in res.output, res.output
    for options in (["--layer", "layer4"], ["--arch", "alexnet", "--weights", "none", "--layer", "fc7"]):
        res = CliRunner().invoke(main, ["query", str(path), *options], input="red\nEXIT\n")
        assert res.exit_code == 0 and "Word: red" in res.output, (options, res.output)


def test_a_layer_given_for_an_arch_torchvision_does_not_have_ends_the_command_with_the_arch_message(
        no_extractor, tmp_path):
    # the --layer check looked the layer up in the graph of the model's recorded arch; an arch this
    # torchvision does not have (a store extracted with a newer one) raised its ValueError out of the
    # command, a traceback, where --weights with the same model gives the arch's message and exit 1
    import numpy as np

    from gensim_im2vec import Im2Vec

    rng = np.random.default_rng(0)
    features = {f"img:{i}": rng.standard_normal(8).astype(np.float32) for i in range(6)}
    other = Im2Vec([[k, "red", "blue"] for k in features] * 3, image_features=features, vector_size=8, min_count=1,
                   epochs=1, workers=1, seed=1)
    other.image_features_metadata = {"arch": "resnet99", "weights": "none (random init, seed=0)",
                                     "layer": "penultimate"}
    other.save(str(tmp_path / "m.model"))
    said = {}
    for options in (["--weights", "none"], ["--layer", "layer4"]):
        res = CliRunner().invoke(main, ["query", str(tmp_path / "m.model"), *options], input="red\nEXIT\n")
        assert res.exit_code == 1 and isinstance(res.exception, SystemExit), (options, res.output, res.exception)
        said[options[0]] = res.output
    assert said["--layer"] == said["--weights"]
    assert said["--layer"].startswith("Error: cannot extract features for image files: arch: 'resnet99' is not a "
                                      "torchvision classification model."), said


def test_another_arch_without_a_layer_has_the_recorded_layer_checked_before_the_prompt(no_extractor, tmp_path):
    # `--arch alexnet` on a model whose features are resnet18's layer4: the session takes the recorded layer, which
    # alexnet has not, and said so at the first image file only (the prompt, answers to words, then the library's
    # message); it is looked up in alexnet's graph now, as a --layer is. A layer the other arch has is accepted
    import numpy as np

    from gensim_im2vec import Im2Vec

    rng = np.random.default_rng(0)
    features = {f"img:{i}": rng.standard_normal(8).astype(np.float32) for i in range(6)}
    model = Im2Vec([[k, "red", "blue"] for k in features] * 3, image_features=features, vector_size=8, min_count=1,
                   epochs=1, workers=1, seed=1)
    for layer, arch, refused in (("layer4", "alexnet", True), ("layer4", "resnet34", False),
                                 ("penultimate", "alexnet", False), ("fc7 (classifier.5)", "vgg11", False)):
        model.image_features_metadata = {"arch": "resnet18", "weights": "none (random init, seed=0)", "layer": layer}
        model.save(str(tmp_path / "m.model"))
        res = CliRunner().invoke(main, ["query", str(tmp_path / "m.model"), "--arch", arch, "--weights", "none"],
                                 input="red\nEXIT\n")
        if refused:
            assert res.exit_code == 1 and PROMPT not in res.output, (layer, arch, res.output)
            assert f"'{layer}' is not a node of {arch}" in res.output, res.output
        else:
            assert res.exit_code == 0 and "Word: red" in res.output, (layer, arch, res.output)
