"""The CLI never prints a traceback for a user error: every subcommand, given a bad argument, ends
with one ``Error:`` line that names the culprit and the fix, and a non-zero exit status (issue 12)."""

from __future__ import annotations

import bz2
import subprocess
import sys

import click
import numpy as np
import pytest
from click.testing import CliRunner
from gensim.models import Word2Vec
from PIL import Image

from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.store import FeatureStore


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_errors")
    keys = [f"img:{i}" for i in range(6)]
    store = FeatureStore.from_arrays(d / "store", keys, np.random.default_rng(0).random((6, 8), np.float32) + 0.1)
    docs = [[k, "cat", "dog"] for k in keys] * 3
    (d / "docs.txt").write_text("".join(" ".join(doc) + "\n" for doc in docs))
    Im2Vec(docs, image_features=store, vector_size=4, min_count=1, epochs=1, workers=1).save(str(d / "m.model"))
    Word2Vec([["cat", "dog"]] * 5, vector_size=12, min_count=1, workers=1).save(str(d / "w2v.model"))
    (d / "notmodel.txt").write_text("hello\n")
    (d / "latin1.txt").write_bytes(b"caf\xe9\n")
    (d / "empty.txt").write_bytes(b"")
    (d / "imgs").mkdir()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(d / "imgs" / "red.png")
    (d / "emptydir").mkdir()
    text = b"".join(b"line %d about cats\n" % i for i in range(3000))
    (d / "cut.txt.bz2").write_bytes(bz2.compress(text)[:500])
    return d


# (arguments, what the message must say); {d} is the fixture folder
CASES = {
    "extract": (["extract", "{d}/imgs", "-o", "{d}/out-store", "--weights", "/etc/passwd", "--device", "cpu"],
                "'/etc/passwd' is not a PyTorch checkpoint"),
    "fetch-weights": (["fetch-weights", "NoSuch_Weights.X"], "unknown torchvision weights 'NoSuch_Weights.X'"),
    "normalize": (["normalize", "{d}/cut.txt.bz2", "-o", "{d}/out.txt"], "cut.txt.bz2: the bz2 data ends early"),
    "datasets list": (["datasets", "list", "extra"], "unexpected extra argument"),
    "datasets build": (["datasets", "build", "nosuch", "{d}/ds"], "unknown dataset 'nosuch'"),
    "datasets split": (["datasets", "split", "{d}/emptydir"], "no images in"),
    "evaluate": (["evaluate", "{d}/notmodel.txt", "--test", "{d}/docs.txt", "--features", "{d}/store"],
                 "notmodel.txt' is not a saved model"),
    "train": (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/no/such/dir/m.model"],
              "'{d}/no/such/dir' does not exist; create it first"),
    "export": (["export", "{d}/notmodel.txt", "-o", "{d}/proj"], "notmodel.txt' is not a saved model"),
    "index": (["index", "{d}/w2v.model"], "w2v.model' holds a text-only model (a plain gensim Word2Vec: 2 words, "
                                          "no images); `im2vec index` needs a model with images"),
    "query": (["query", "{d}/m.model", "--zero-shot-words", "{d}/latin1.txt"],
              "latin1.txt: invalid UTF-8 at byte 3 (line 1)"),
    "report": (["report", "{d}/m.model", "-o", "{d}/docs.txt"], "is a file"),
    "extract-ray": (["extract-ray", "{d}/imgs", "-o", "{d}/docs.txt"], "'{d}/docs.txt' is a file; give a folder"),
    "demo": (["demo", "--out", "{d}/docs.txt"], "is a file"),
    "split": (["split", "{d}/empty.txt", "-o", "{d}/split-out"], "empty.txt: no documents in it"),
}


def _all_commands(group: click.Group, prefix: str = "") -> set[str]:
    out = set()
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out |= _all_commands(cmd, prefix + name + " ")
        else:
            out.add(prefix + name)
    return out


def test_every_subcommand_has_a_bad_argument_case():
    assert _all_commands(main) == set(CASES)


@pytest.mark.parametrize("command", sorted(CASES))
def test_a_bad_argument_ends_with_a_message_not_a_traceback(files, command):
    args, message = CASES[command]
    d = str(files)
    result = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"  # click's exit, no crash
    assert "Traceback" not in result.output and "Error: " in result.output
    assert message.format(d=d) in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("args", [
    ["query", "{d}/w2v.model"],
    ["report", "{d}/w2v.model", "-o", "{d}/report-out"],
    ["export", "{d}/w2v.model", "-o", "{d}/proj-out"],
    ["index", "{d}/w2v.model"],
    ["evaluate", "{d}/w2v.model", "--test", "{d}/docs.txt", "--features", "{d}/store"],
])
def test_a_command_that_needs_images_refuses_a_text_only_model(files, args):
    # Im2Vec.load takes a plain gensim Word2Vec as a text-only Im2Vec (gensim's suite loads old
    # Word2Vec files through it); the commands that need images say what the file holds and how
    # to add images, where a plain Word2Vec used to crash on the first query (issue 12)
    d = str(files)
    result = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.output.split())
    assert f"'{d}/w2v.model' holds a text-only model (a plain gensim Word2Vec: 2 words, no images); " \
           f"`im2vec {args[0]}` needs a model with images" in said, said
    assert f"`im2vec train DOCUMENTS -f STORE -o MODEL --pretrained {d}/w2v.model`" in said
    assert "Im2Vec.from_word2vec(Im2Vec.load(path)" in said and "Traceback" not in said


def test_an_im2vec_without_images_is_refused_as_text_only(files, tmp_path):
    Im2Vec([["cat", "dog"]] * 5, vector_size=4, min_count=1, epochs=1, workers=1).save(str(tmp_path / "t.model"))
    result = CliRunner().invoke(main, ["query", str(tmp_path / "t.model")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "t.model' holds a text-only model (an Im2Vec without image features: 2 words, no images)" \
        in " ".join(result.output.split())


@pytest.mark.parametrize("args,message", [
    (["--pretrained", "{d}/notmodel.txt"], "notmodel.txt' is not a saved model"),
    (["--alpha", "-1"], "Invalid value for '--alpha': -1.0 is not in the range x>0"),
    (["--sample", "-5"], "Invalid value for '--sample': -5.0 is not in the range x>=0"),
    (["--image-alpha", "0"], "Invalid value for '--image-alpha'"),
])
def test_train_refuses_bad_options_before_training(files, monkeypatch, args, message):
    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(Im2Vec, "train", no_training)
    d = str(files)
    result = CliRunner().invoke(main, ["train", f"{d}/docs.txt", "-f", f"{d}/store", "-o", f"{d}/x.model",
                                       *[a.format(d=d) for a in args]])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert message.format(d=d) in " ".join(result.output.split()), result.output
    assert not (files / "x.model").exists()


def test_train_on_an_empty_file_says_so(files):
    result = CliRunner().invoke(main, ["train", f"{files}/empty.txt", "-f", f"{files}/store", "-o", f"{files}/e.model"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "empty.txt: no documents in it" in result.output


@pytest.mark.parametrize("args,option", [
    (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/nodir/m.model"], "'-o' / '--output'"),
    (["normalize", "{d}/docs.txt", "-o", "{d}/out.txt", "--report", "{d}/nodir/r.json"], "'--report'"),
    (["evaluate", "{d}/m.model", "--test", "{d}/docs.txt", "--features", "{d}/store", "--json",
      "{d}/nodir/e.json"], "'--json'"),
    (["index", "{d}/m.model", "-o", "{d}/nodir/m.ann"], "'-o' / '--output'"),
    (["export", "{d}/m.model", "-o", "{d}/docs.txt/proj"], "'-o' / '--output'"),
])
def test_outputs_are_checked_before_any_work(files, monkeypatch, args, option):
    # a missing folder for -o used to surface only after training, losing the model
    monkeypatch.setattr(Im2Vec, "load", classmethod(lambda *a, **k: pytest.fail("work started")))
    monkeypatch.setattr(Im2Vec, "train", lambda *a, **k: pytest.fail("work started"))
    d = str(files)
    result = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert f"Invalid value for {option}" in result.output


def test_no_traceback_on_stderr_of_a_real_process(files):
    proc = subprocess.run([sys.executable, "-m", "gensim_im2vec.cli", "query", str(files / "notmodel.txt")],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "is not a saved model" in proc.stderr


@pytest.mark.parametrize("args,option,what", [
    (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/docs.txt"], "'-o' / '--output'", "the DOCUMENTS"),
    (["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/w2v.model", "--pretrained", "{d}/w2v.model"],
     "'-o' / '--output'", "the --pretrained model"),
    (["normalize", "{d}/docs.txt", "-o", "{d}/docs.txt"], "'-o' / '--output'", "the SOURCE"),
    (["normalize", "{d}/docs.txt", "-o", "{d}/n.txt", "--report", "{d}/n.txt"], "'--report'",
     "the -o / --output file"),
    (["evaluate", "{d}/m.model", "--test", "{d}/docs.txt", "--features", "{d}/store", "--json", "{d}/m.model"],
     "'--json'", "the MODEL"),
    (["index", "{d}/m.model", "-o", "{d}/m.model"], "'-o' / '--output'", "the MODEL_PATH"),
])
def test_an_output_that_is_an_input_is_refused_before_any_work(files, monkeypatch, args, option, what):
    # `im2vec train DOCS -o DOCS` used to replace the documents with the model, `normalize SRC -o SRC`
    # the source with its documents, and `normalize -o X --report X` the documents with the report
    monkeypatch.setattr(Im2Vec, "train", lambda *a, **k: pytest.fail("work started"))
    d = str(files)
    before = {p: p.read_bytes() for p in files.iterdir() if p.is_file()}
    result = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.output.split())
    target = args[-1].format(d=d)  # the output, also an input
    assert f"Invalid value for {option}: '{target}' is also {what}; writing it would destroy that file" in said, said
    assert {p: p.read_bytes() for p in files.iterdir() if p.is_file()} == before


@pytest.mark.parametrize("source", ["empty.txt", "emptydir", "m.model"])
def test_normalize_refuses_a_source_without_documents_and_keeps_the_old_output(files, tmp_path, source):
    out = tmp_path / "docs.txt"
    out.write_text("img:1 cat\n")
    result = CliRunner().invoke(main, ["normalize", str(files / source), "-o", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    said = " ".join(result.output.split())
    assert f"Error: {files / source} (read as --format " in said and "no documents in it" in said, said
    assert f"{out} was not written" in said
    assert out.read_text() == "img:1 cat\n" and sorted(p.name for p in tmp_path.iterdir()) == ["docs.txt"]


@pytest.mark.parametrize("source,encoding", [("latin1.txt", True), ("m.model", True), ("emptydir", False)])
def test_normalize_of_a_file_that_is_not_utf8_says_so(files, tmp_path, source, encoding):
    # a Latin-1 file (or a binary one) ended with "skipped bad_encoding 1 ... Check the path and --format",
    # which no --format fixes
    result = CliRunner().invoke(main, ["normalize", str(files / source), "-o", str(tmp_path / "docs.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert ("Most of its records are not UTF-8 text (bad_encoding): convert it to UTF-8" in said) is encoding, said
    assert ("Check the path and --format." in said) is not encoding, said
    assert not (tmp_path / "docs.txt").exists()


@pytest.mark.parametrize("args,message", [
    (["--fields", "tags"], "--fields only applies to YFCC100M metadata (--format yfcc), and {d}/docs.txt is read "
                           "as --format text"),
    (["--image-column", "a", "--tag-column", "b"], "--image-column, --tag-column only apply to tables"),
])
def test_normalize_refuses_options_of_another_format(files, args, message):
    d = str(files)
    result = CliRunner().invoke(main, ["normalize", f"{d}/docs.txt", "-o", f"{d}/never.txt", *args])
    assert result.exit_code == 2 and message.format(d=d) in " ".join(result.output.split()), result.output
    assert not (files / "never.txt").exists()


def test_evaluate_names_the_option_and_file_a_reader_failed_on(files, tmp_path):
    d = str(files)
    FeatureStore.from_arrays(tmp_path / "wide", [f"img:{i}" for i in range(6)], np.ones((6, 16), np.float32))
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    common = ["evaluate", f"{d}/m.model", "--test", str(tmp_path / "test.jsonl"), "--baselines", "none",
              "--no-word-similarity"]
    for extra, message in [
        (["--features", f"{d}/store", "--candidates", f"{d}/latin1.txt"],
         f"--candidates {d}/latin1.txt: invalid UTF-8 at byte 3"),  # was: 'utf-8' codec can't decode ...
        (["--features", str(tmp_path / "wide")],
         f"--features {tmp_path / 'wide'}: features of dim 16, the model's are of dim 8"),
    ]:
        result = CliRunner().invoke(main, common + extra)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert message in " ".join(result.output.split()), result.output


def test_report_names_an_evaluation_file_that_is_not_json(files, tmp_path):
    result = CliRunner().invoke(main, ["report", f"{files}/m.model", "-o", str(tmp_path / "r"), "--evaluation",
                                       f"{files}/docs.txt"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"--evaluation {files}/docs.txt: not a JSON file" in " ".join(result.output.split())


def test_report_without_umap_says_what_to_install(files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap raises ImportError
    result = CliRunner().invoke(main, ["report", f"{files}/m.model", "-o", str(tmp_path / "r"), "--map-method", "umap"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "map method 'umap' needs umap-learn" in " ".join(result.output.split())


@pytest.mark.parametrize("value,message", [
    (",", "no image set in ','"),
    ("openclipart,nosuch", "unknown image set(s) ['nosuch']"),
    ("emoji", "the demo evaluates on openclipart's held-out images; include openclipart"),
])
def test_demo_checks_its_image_sets_before_any_step(tmp_path, monkeypatch, value, message):
    # `--image-sets ,` used to fail after building the text and pre-training words (minutes), with
    # "need at least one array to concatenate"; without openclipart the evaluation raised a KeyError
    import gensim_im2vec.pipeline

    monkeypatch.setattr(gensim_im2vec.pipeline, "run_demo", lambda *a, **k: pytest.fail("work started"))
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--image-sets", value])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"Invalid value for '--image-sets': {message}" in " ".join(result.output.split()), result.output


@pytest.mark.parametrize("flag,expected", [([], False), (["--no-space-analogies"], False),
                                           (["--space-analogies"], True)])
def test_demo_space_analogies_flag_reaches_the_config(tmp_path, monkeypatch, flag, expected):
    import gensim_im2vec.pipeline

    seen = []
    monkeypatch.setattr(gensim_im2vec.pipeline, "run_demo", lambda cfg, **k: seen.append(cfg))
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), *flag])
    assert result.exit_code == 0, result.output
    assert seen[0].space_analogies is expected


@pytest.mark.parametrize("args,message", [
    (["{d}/emptydir", "-o", "{d}/never-store"], "no image files under '{d}/emptydir'"),
    (["{d}/imgs", "-o", "{d}/never-store", "--device", "gpu0"],
     "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu0'"),
])
def test_extract_refuses_an_empty_folder_and_an_unknown_device(files, args, message):
    pytest.importorskip("torchvision")
    d = str(files)
    result = CliRunner().invoke(main, ["extract", *[a.format(d=d) for a in args], "--weights", "none",
                                       "--arch", "resnet18", "--num-workers", "0", "--no-progress"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert message.format(d=d) in " ".join(result.output.split()), result.output
    assert not (files / "never-store").exists()


def test_extract_ray_s_gpu_decoding_refusal_names_the_command_line_options():
    """extract_ray's refusal of GPU decoding on CPU actors named jpeg_device='cpu' and None (review of
    2026-12-05): from the shell those are --jpeg-device cpu and leaving the option out."""
    from gensim_im2vec.cli import _in_cli_terms

    text = _in_cli_terms("jpeg_device='cuda' decodes on a GPU, but this run's actors are CPU actors (cluster: 0 GPU, "
                         "gpus_per_actor=0); pass jpeg_device='cpu', or None to decode with PIL.")
    assert "jpeg_device" not in text and "gpus_per_actor" not in text and "None" not in text
    assert "pass --jpeg-device cpu, or leave --jpeg-device out" in text and "--gpus-per-actor 0" in text


@pytest.mark.parametrize("device,message", [
    ("gpu", "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ("cuda:99", "device: 'cuda:99' was asked for but"),
])
def test_demo_checks_its_device_before_building_the_data_sets(tmp_path, monkeypatch, device, message):
    # `im2vec demo --device gpu` built the three data sets (260 MB, minutes) and only then, at the
    # feature step, said that 'gpu' is no device
    pytest.importorskip("torch")
    import gensim_im2vec.pipeline

    monkeypatch.setattr(gensim_im2vec.pipeline, "build_data", lambda *a, **k: pytest.fail("data sets built"))
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path / "demo"), "--device", device])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert message in " ".join(result.output.split()), result.output
    assert not any((tmp_path / "demo").glob("*")), list((tmp_path / "demo").iterdir())


@pytest.mark.parametrize("command", [
    ["query", "{d}/m.model", "--store", "{d}/imgs"],
    ["export", "{d}/m.model", "-o", "{d}/never-export", "--store", "{d}/imgs"],
    ["index", "{d}/m.model", "-o", "{d}/never.ann", "--store", "{d}/emptydir", "--check", "0"],
])
def test_a_store_option_given_a_folder_that_is_no_feature_store_is_refused(files, command):
    # the model's own store in place, --store was never opened: the image folder given as the store
    # (or any folder) was ignored without a word and the command went on (exit 0)
    d = str(files)
    result = CliRunner().invoke(main, [a.format(d=d) for a in command], input="EXIT\n")
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Invalid value for '--store': no feature store at" in said, result.output
    if "imgs" in command[-1]:
        assert "it is a folder of images (red.png), not the features extracted from them" in said
    assert not (files / "never-export").exists() and not (files / "never.ann").exists()


def test_evaluate_refuses_mode_without_demo(files, tmp_path):
    # --mode is read by --demo's rules alone: given with --test, it was ignored without a word (exit 0)
    d = str(files)
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    result = CliRunner().invoke(main, ["evaluate", f"{d}/m.model", "--test", str(tmp_path / "test.jsonl"),
                                       "--features", f"{d}/store", "--no-word-similarity", "--mode", "joint"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "Error: --mode says how MODEL was trained for --demo's rules" in said and "leave --mode out" in said, said


def test_evaluate_analogies_the_model_cannot_ask_are_named(files, tmp_path):
    # questions with a word or image the model lacks were left out without a word: all of them, and
    # evaluate printed no analogy line at all (exit 0)
    d = str(files)
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    (tmp_path / "none.txt").write_text("img:1 cat zebra img:2\nimg:1 cat dog img:99\n")
    (tmp_path / "some.txt").write_text("img:1 cat zebra img:2\nimg:1 cat dog img:2\n")
    base = ["evaluate", f"{d}/m.model", "--test", str(tmp_path / "test.jsonl"), "--features", f"{d}/store",
            "--no-word-similarity", "--baselines", "none", "--analogies"]
    result = CliRunner().invoke(main, [*base, str(tmp_path / "none.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "none of the 2 question(s) of" in said and "e.g. 'zebra' of 'img:1 cat zebra img:2'" in said, said
    result = CliRunner().invoke(main, [*base, str(tmp_path / "some.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "warning: 1 of the 2 questions of --analogies" in said and "they are left out" in said, said
    assert "analogies image(x) − a + b → y on 1 questions" in said, said


@pytest.mark.parametrize("command,option", [(["train", "{d}/docs.txt", "-f", "{d}/store", "-o", "{d}/never.model"],
                                             "--space-analogies"),
                                            (["evaluate", "{d}/m.model", "--test", "{t}", "--features", "{d}/store"],
                                             "--analogies")])
def test_an_analogy_file_that_is_not_utf8_is_refused(files, tmp_path, command, option):
    # it was decoded with errors="replace": a Latin-1 word became 'caf\ufffd', then "not of this vocabulary"
    d = str(files)
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    (tmp_path / "q.txt").write_bytes(b"img:1 caf\xe9 dog img:2\n")
    args = [a.format(d=d, t=tmp_path / "test.jsonl") for a in command]
    result = CliRunner().invoke(main, [*args, option, str(tmp_path / "q.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"Invalid value for '{option}': '{tmp_path / 'q.txt'}': invalid UTF-8 at byte 9 (line 1)" in said, said
    assert not (files / "never.model").exists()


def test_query_zero_shot_words_the_model_lacks_say_the_fix(files, tmp_path):
    # the message named the words and stopped there ("2 of 3 are not words of the model, e.g. [...]")
    (tmp_path / "zs.txt").write_text("cat\nzebra\nimg:1\n")
    result = CliRunner().invoke(main, ["query", f"{files}/m.model", "--zero-shot-words", str(tmp_path / "zs.txt")],
                                input="EXIT\n")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "2 of 3 are not words of the model, e.g. ['zebra', 'img:1']. Give words of MODEL, one a line" in said, said


@pytest.mark.parametrize("command", [["extract", "{d}/imgs", "-o", "{d}/never-store", "--device", "cpu"],
                                     ["query", "{d}/m.model"]])
def test_an_unknown_weights_name_is_said_in_the_command_lines_terms(files, command):
    # the library's "..., a checkpoint path, or None." told a shell user to type None, where --weights takes none
    pytest.importorskip("torchvision")
    d = str(files)
    result = CliRunner().invoke(main, [*[a.format(d=d) for a in command], "--arch", "resnet18", "--weights",
                                       "IMAGENET9K_V9"], input="EXIT\n")
    said = " ".join(result.output.split())
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "--weights: 'resnet18' has no weights 'IMAGENET9K_V9'" in said, said
    assert "a checkpoint file, or none (random weights)." in said and "None" not in said, said
    assert not (files / "never-store").exists()


def test_every_option_the_readmes_command_line_section_names_exists():
    # README's extract-ray row named `--threads` among extract's options, which no command has
    import re
    from pathlib import Path

    def options(command) -> set[str]:
        found = {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}
        for sub in getattr(command, "commands", {}).values():
            found |= options(sub)
        return found

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## The command line", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", section))
    assert len(named) > 30, named
    assert sorted(named - options(main) - {"--help"}) == []


@pytest.mark.parametrize("args,said", [
    (["--keys", "stem"], "--keys sets how the --images files become the sprite: give --images DIR, or leave --keys out"),
    (["--thumbnail", "16"], "--thumbnail sets how the --images files become the sprite"),
])
def test_export_refuses_sprite_options_without_images(files, args, said):
    # without --images there is no sprite, and --keys / --thumbnail were ignored without a word (exit 0)
    result = CliRunner().invoke(main, ["export", f"{files}/m.model", "-o", f"{files}/never-export", *args])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert said in " ".join(result.output.split()), result.output
    assert not (files / "never-export").exists()


def test_report_refuses_prefix_without_dataset_or_images(files, tmp_path):
    # --prefix keys the --dataset and --images files; without them it was ignored without a word (exit 0)
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    result = CliRunner().invoke(main, ["report", f"{files}/m.model", "-o", str(tmp_path / "r"), "--test",
                                       str(tmp_path / "test.jsonl"), "--prefix", "photo:"])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "--prefix keys the files of --dataset and --images for their thumbnails: give one of them" in said, said
    assert not (tmp_path / "r").exists()


def test_evaluate_an_empty_candidates_file_is_refused_and_an_empty_zero_shot_file_said(files, tmp_path):
    # an empty --candidates evaluated "0 of the 1 held-out images" (exit 0); an empty --zero-shot
    # (a split made with --zero-shot-share 0) left the zero-shot columns empty without a word
    d = str(files)
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    (tmp_path / "none.txt").write_text("# no tag here\n\n")
    base = ["evaluate", f"{d}/m.model", "--test", str(tmp_path / "test.jsonl"), "--features", f"{d}/store",
            "--no-word-similarity", "--baselines", "none"]
    result = CliRunner().invoke(main, [*base, "--candidates", str(tmp_path / "none.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"Invalid value for '--candidates': '{tmp_path / 'none.txt'}' holds no tag" in said, said
    result = CliRunner().invoke(main, [*base, "--zero-shot", str(tmp_path / "none.txt")])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert f"warning: --zero-shot {tmp_path / 'none.txt'} holds no tag: the zero-shot columns stay empty" in said


@pytest.mark.parametrize("words", [",", " ", ""])
def test_report_refuses_words_that_name_no_word(files, tmp_path, words):
    # --words ',' (or '') left the words' section out of the report without a word
    (tmp_path / "test.jsonl").write_text('{"key": "img:0", "tags": ["cat"]}\n')
    result = CliRunner().invoke(main, ["report", f"{files}/m.model", "-o", str(tmp_path / "r"), "--test",
                                       str(tmp_path / "test.jsonl"), "--words", words])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"Invalid value for '--words': {words!r} names no word" in " ".join(result.output.split()), result.output
    assert not (tmp_path / "r").exists()


def test_extract_refuses_pca_sample_without_pca(files):
    # without --pca no PCA is fitted, and --pca-sample was ignored without a word (the store extracted)
    d = str(files)
    result = CliRunner().invoke(main, ["extract", f"{d}/imgs", "-o", f"{d}/never-store", "--pca-sample", "10",
                                       "--device", "cpu", "--no-progress"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert "--pca-sample is how many images the PCA of --pca N is fitted on" in " ".join(result.output.split())
    assert not (files / "never-store").exists()


def test_extract_unknown_layer_lists_the_likely_layers_and_a_shell_command_for_all(files):
    # was: "Hint: use gensim_im2vec.features.layer_names('mobilenet_v2') ... to list them": a Python call
    import os
    import shlex

    d = str(files)
    result = CliRunner().invoke(main, ["extract", f"{d}/imgs", "-o", f"{d}/never-store", "--weights", "none",
                                       "--layer", "features.18.x", "--device", "cpu", "--no-progress"])
    out = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "--layer: 'features.18.x' is not a node of mobilenet_v2" in out and "Hint: use" not in out
    listed = out.split("nearest the output: ", 1)[1].split(";", 1)[0].split(", ")
    assert len(listed) == 10 and listed[-5:] == ["features.18", "adaptive_avg_pool2d", "flatten", "classifier.0",
                                                 "classifier.1"]
    assert "All 84 nodes of mobilenet_v2: " in out and "leave --layer out" in out
    command = out.split("All 84 nodes of mobilenet_v2: ", 1)[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    printed = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, check=True).stdout.split()
    assert len(printed) == 84 and printed[-1] == "classifier.1" and set(listed) <= set(printed)
    assert shlex.split(command)[1] == "-c"
    assert not (files / "never-store").exists()
