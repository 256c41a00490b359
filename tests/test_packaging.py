"""What a user who installs gensim-im2vec with pip gets: the optional extras' errors, the metadata,
and (built offline from this checkout) the sdist and the wheel."""

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

# A child interpreter where every import of the `hidden` top-level modules raises ModuleNotFoundError,
# as when their extra is not installed (a `sys.modules[name] = None` entry would break SciPy's import:
# see tests/test_model.py's NO_VISION).
HIDE = """
import sys
HIDDEN = {hidden!r}
class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, _Hide())
"""


def _child(code: str, hidden: tuple[str, ...], cwd) -> dict:
    res = subprocess.run([sys.executable, "-c", HIDE.format(hidden=hidden) + code], capture_output=True,
                         text=True, cwd=cwd)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


def test_without_the_vision_extra_what_needs_torch_names_the_extra(tmp_path):
    """torch, torchvision and Pillow hidden: importing the extractor says which extra installs them,
    and the commands that need them end with one ``Error:`` line naming
    ``pip install 'gensim-im2vec[vision]'``, not a traceback of ``No module named 'torch'``."""
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    got = _child("""
import json
from click.testing import CliRunner
from gensim_im2vec.cli import main
out = {}
for module in ("gensim_im2vec.features", "gensim_im2vec.decode"):
    try:
        __import__(module)
    except ModuleNotFoundError as e:
        out[module] = str(e)
for args in (["extract", "imgs", "-o", "feats"], ["extract-ray", "imgs", "-o", "feats2"], ["fetch-weights"]):
    r = CliRunner().invoke(main, args)
    out[args[0]] = [r.exit_code, r.output]
from gensim_im2vec.datasets import build_emoji
try:  # (the demo's emoji data set: its inputs stand in for the Debian packages' files)
    build_emoji("emoji", font_path="imgs/a.png", emoji_test="imgs/a.png", annotations=["imgs/a.png"])
except ModuleNotFoundError as e:
    out["build_emoji"] = str(e)
print(json.dumps(out))
""", ("torch", "torchvision", "PIL"), tmp_path)
    fix = "pip install 'gensim-im2vec[vision]'"
    for module in ("gensim_im2vec.features", "gensim_im2vec.decode", "build_emoji"):
        assert fix in got.get(module, ""), got
    for command in ("extract", "extract-ray", "fetch-weights"):
        code, output = got[command]
        assert code == 1 and "Traceback" not in output, (command, output)
        assert output.startswith("Error: ") and fix in output, (command, output)
    assert not (tmp_path / "feats").exists() and not (tmp_path / "feats2").exists()


def test_without_the_report_extra_the_report_is_refused_before_it_writes(tmp_path):
    """matplotlib hidden: ``im2vec report`` says ``pip install 'gensim-im2vec[report]'`` before it
    makes its folder (it used to write thumbnails, then fail on ``No module named 'matplotlib'``)."""
    got = _child("""
import json
from click.testing import CliRunner
from gensim_im2vec import Im2Vec
from gensim_im2vec.cli import main
from gensim_im2vec.synthetic import make_corpus
data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
Im2Vec(data.docs, image_features=data.features, vector_size=8, min_count=1, epochs=1, workers=1,
       seed=1).save("m.model")
r = CliRunner().invoke(main, ["report", "m.model", "-o", "rep"])
print(json.dumps([r.exit_code, r.output]))
""", ("matplotlib",), tmp_path)
    code, output = got
    assert code == 1 and "Traceback" not in output, output
    assert "pip install 'gensim-im2vec[report]'" in output, output
    assert not (tmp_path / "rep").exists()


# ---------------------------------------------------------------------------- metadata
def _pyproject() -> dict:
    import tomllib
    from pathlib import Path

    return tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))


def _regex_needs_311(pattern: str, flags: int) -> bool:
    """Whether `pattern` uses a possessive quantifier (``*+``, ``++``, ``?+``, ``{m,n}+``) or an atomic
    group (``(?>...)``): new in Python 3.11's re (3.10 raises "multiple repeat")."""
    import re._constants as c
    import re._parser as p

    def walk(items) -> bool:
        for op, av in items:
            if op in (c.POSSESSIVE_REPEAT, c.ATOMIC_GROUP):
                return True
            for part in av if isinstance(av, (tuple, list)) else (av,):
                subs = part if isinstance(part, (tuple, list)) else (part,)
                if any(isinstance(s, p.SubPattern) and walk(s) for s in subs):
                    return True
        return False

    return walk(p.parse(pattern, flags))


def test_requires_python_admits_only_pythons_that_compile_the_package_s_patterns():
    """requires-python said >=3.10, but gensim_im2vec.text compiles possessive quantifiers at import
    (Python 3.11+): on 3.10, `from gensim_im2vec import Im2Vec` failed with re.error "multiple repeat"."""
    import ast
    import re
    from pathlib import Path

    import gensim_im2vec

    newer = []
    for path in sorted(Path(gensim_im2vec.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                verbose = re.X if any(isinstance(n, ast.Attribute) and n.attr in ("X", "VERBOSE")
                                      for a in node.args[1:] + [k.value for k in node.keywords] for n in ast.walk(a)) else 0
                if _regex_needs_311(node.args[0].value, verbose):
                    newer.append(f"{path.name}:{node.lineno}")
    assert newer, "no pattern needs 3.11: the check below tests nothing"
    spec = _pyproject()["project"]["requires-python"]
    low = tuple(int(x) for x in re.fullmatch(r">=\s*(\d+)\.(\d+)", spec).groups())
    assert low >= (3, 11), f"requires-python {spec!r}, but these patterns need Python 3.11: {newer}"


def test_the_build_backend_s_minimum_reads_the_license_expression():
    """`license = "LGPL-2.1-or-later"` (an SPDX expression, PEP 639) is read by setuptools 77 and
    later; the build-system asked for setuptools>=68, and setuptools 76 refuses the pyproject.toml
    ("`project.license` must be valid exactly by one definition": a table with `text` or `file`)."""
    import re

    meta = _pyproject()
    assert isinstance(meta["project"]["license"], str)
    setuptools = [r for r in meta["build-system"]["requires"] if re.match(r"setuptools\b", r)]
    assert len(setuptools) == 1, meta["build-system"]["requires"]
    low = re.fullmatch(r"setuptools\s*>=\s*(\d+)(?:\.\d+)*", setuptools[0])
    assert low is not None and int(low.group(1)) >= 77, setuptools[0]


# ---------------------------------------------------------------------------- the sdist and the wheel
# Built offline from this checkout with the test environment's setuptools, Cython, NumPy and SciPy
# (setuptools' PEP 517 hooks called directly: no isolated build environment, so nothing is
# downloaded), the sdist from a copy of the tracked files, the wheel from the unpacked sdist, as
# `pip install gensim-im2vec-*.tar.gz` builds it.
ROOT = Path(__file__).resolve().parents[1]
BUILD_DEPS = {"setuptools": (77,), "Cython": (3, 0), "numpy": (1, 24), "scipy": (1, 10)}


#: The checkout's folders of the package's and the kernel's sources: a file there that git does not track yet (a
#: module being written, not added) is built too, as the package's checks expect every module of the folder.
NEW_SOURCES = ("gensim_im2vec", "cython_ext")


def _tracked_files() -> list[str] | None:
    """The checkout's files that git tracks, and those it would (untracked, not ignored) in
    :data:`NEW_SOURCES`, as they are on disk; None when it is not a git checkout or git is missing.
    Other untracked files (a developer's data beside the checkout, gigabytes of it) are not the
    release's, and are never copied."""
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        return None
    files = set()
    for args in (["--cached"], ["--others", "--exclude-standard", "--", *NEW_SOURCES]):
        res = subprocess.run(["git", "ls-files", "-z", *args], cwd=ROOT, capture_output=True)
        if res.returncode != 0:
            return None
        files.update(f for f in res.stdout.decode().split("\0") if f and (ROOT / f).is_file())
    return sorted(files)


def _skip_without_build_tools() -> None:
    import importlib.metadata
    import sysconfig

    for dist, low in BUILD_DEPS.items():
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"building needs {dist}>={'.'.join(map(str, low))}, not installed here (pip would "
                        f"download it into an isolated build environment; this test builds offline)")
        if tuple(int(x) for x in re.findall(r"\d+", version)[:len(low)]) < low:
            pytest.skip(f"building needs {dist}>={'.'.join(map(str, low))}, found {version} (pip would download "
                        f"a newer one into an isolated build environment; this test builds offline)")
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"building the kernel needs a C compiler ({compiler!r} not found)")


def _hook(hook: str, cwd: Path, out: Path) -> Path:
    """Run setuptools' PEP 517 `hook` (build_sdist, build_wheel) in `cwd`; the file it wrote in `out`."""
    code = f"from setuptools import build_meta; print(build_meta.{hook}({str(out)!r}))"
    # -g0: no debug information in the kernel (a third of its compile time; the checks do not read it)
    env = {**os.environ, "PYTHONPATH": "", "CFLAGS": f"{os.environ.get('CFLAGS', '')} -g0".strip()}
    res = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, env=env)
    assert res.returncode == 0, f"{hook} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return out / res.stdout.strip().splitlines()[-1]


def test_the_build_copies_no_untracked_file_but_new_sources(tmp_path, monkeypatch):
    """The build's copy of the checkout took every untracked file that git does not ignore: a developer's
    data beside the checkout (a YFCC100M metadata file, tens of GB) was copied into the test's temporary
    folder on each run. Only the tracked files, and new sources of the package and the kernel, are."""
    if shutil.which("git") is None:
        pytest.skip("needs git")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    for name in ("gensim_im2vec/model.py", "tests/test_a.py", "README.md", "gensim_im2vec/new.py",
                 "cython_ext/new.h", "yfcc100m_dataset.tsv", "data/local.csv", "tests/mine.jsonl", "x.so"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / ".gitignore").write_text("*.so\n")
    subprocess.run([*git, "add", "gensim_im2vec/model.py", "tests/test_a.py", "README.md", ".gitignore"],
                   cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-qm", "a"], cwd=tmp_path, check=True)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _tracked_files() == [".gitignore", "README.md", "cython_ext/new.h", "gensim_im2vec/model.py",
                                "gensim_im2vec/new.py", "tests/test_a.py"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(sdist, wheel, tracked files of the checkout or None)."""
    _skip_without_build_tools()
    tmp = tmp_path_factory.mktemp("dist")
    tracked = _tracked_files()
    src = tmp / "src"
    if tracked is not None:
        for f in tracked:
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    else:
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "demo_output", "*.egg-info", "__pycache__", "*.so", ".*cache", ".hypothesis"))
    generated = ROOT / "cython_ext" / "im2vec_inner.c"  # `make build`'s: setup.py's cythonize redoes it if stale
    if generated.exists():
        shutil.copy2(generated, src / "cython_ext")
    (tmp / "out").mkdir()
    sdist = _hook("build_sdist", src, tmp / "out")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "unpacked", filter="data")
    (top,) = (tmp / "unpacked").iterdir()
    wheel = _hook("build_wheel", top, tmp / "out")
    return sdist, wheel, tracked


@pytest.mark.slow  # (the build: 20-50 s on 2 shared cores; `make test` runs it)
def test_the_sdist_carries_the_kernel_s_sources_and_a_test_suite_that_runs(built):
    """The sdist builds the kernel (the .pyx and its header) and is a source release whose tests run:
    it carried tests/test_*.py (setuptools' default) without tests/conftest.py, tests/data or the
    examples and benchmarks the tests run, so no test module of it could run."""
    sdist, _, tracked = built
    with tarfile.open(sdist) as tar:
        names = {n.partition("/")[2] for n in tar.getnames()} - {""}
    assert {"setup.py", "pyproject.toml", "README.md", "PKG-INFO", "cython_ext/im2vec_inner.pyx",
            "cython_ext/im2vec_vec.h", "tests/conftest.py", "tests/data/old_model/m.model", "Makefile",
            "examples/synthetic_demo.py", "benchmarks/_common.py", "LICENSE"} <= names
    if tracked is not None:
        shipped = [f for f in tracked if f.split("/")[0] in ("gensim_im2vec", "cython_ext", "tests", "docs",
                                                             "examples", "benchmarks")]
        assert not set(shipped) - names, sorted(set(shipped) - names)
    junk = [n for n in names if n.endswith((".so", ".pyc")) or "__pycache__" in n
            or n.split("/")[0] in ("build", ".venv", "demo_output", ".git")]
    assert not junk, junk


@pytest.mark.slow  # (the build: 20-50 s on 2 shared cores; `make test` runs it)
def test_the_wheel_holds_the_compiled_kernel_and_the_package_only(built):
    """The wheel: every module of the package (evaluate and pipeline read their own and other modules'
    sources to key their caches), the kernel compiled for this interpreter, the metadata and the
    console script; nothing else (no tests, demo output, build folders)."""
    import sysconfig

    _, wheel, _ = built
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (meta_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        meta = z.read(meta_name).decode()
        (entry_name,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        entry = z.read(entry_name).decode()
    modules = {f"gensim_im2vec/{p.name}" for p in (ROOT / "gensim_im2vec").glob("*.py")}
    assert modules <= names, sorted(modules - names)
    assert f"gensim_im2vec/im2vec_inner{sysconfig.get_config_var('EXT_SUFFIX')}" in names
    dist_info = meta_name.split("/")[0]
    assert {n.split("/")[0] for n in names} == {"gensim_im2vec", dist_info}, sorted(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "Requires-Python: >=3.11" in meta and "License-Expression: LGPL-2.1-or-later" in meta
    assert {"vision", "report", "scale"} <= set(re.findall(r"^Provides-Extra: (\S+)", meta, re.M))
    assert "Description-Content-Type: text/markdown" in meta and "# gensim-im2vec" in meta  # the README
    assert re.search(r"^im2vec = gensim_im2vec\.cli:main$", entry, re.M)
    pythons = re.findall(r"^Classifier: Programming Language :: Python :: (3\.\d+)$", meta, re.M)
    assert pythons and all(tuple(map(int, v.split("."))) >= (3, 11) for v in pythons), pythons
    assert "Classifier: License ::" not in meta  # (the License-Expression says it; setuptools refuses both)
    assert "License-File: LICENSE" in meta and f"{dist_info}/licenses/LICENSE" in names  # the licence's text


@pytest.mark.slow  # (the build: 20-50 s on 2 shared cores; `make test` runs it)
def test_the_installed_wheel_imports_its_compiled_kernel_and_trains(built, tmp_path):
    """`pip install --no-deps --target` of the wheel, then a child interpreter that sees only that
    folder (not this checkout) trains, saves and loads a model with the wheel's own kernel, and its
    `im2vec` script answers."""
    _, wheel, _ = built
    target = tmp_path / "site"
    res = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                          "--disable-pip-version-check", "--target", str(target), str(wheel)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    code = """
import json, sys
import gensim_im2vec, gensim_im2vec.im2vec_inner as kernel
from gensim_im2vec import Im2Vec
from gensim_im2vec.synthetic import make_corpus
data = make_corpus(n_classes=3, n_images=60, n_features=8, seed=0)
m = Im2Vec(data.docs, image_features=data.features, vector_size=8, min_count=1, epochs=2, workers=1, seed=1)
m.save("m.model")
again = Im2Vec.load("m.model")
print(json.dumps([gensim_im2vec.__file__, kernel.__file__, len(again.image_keys),
                  again.most_similar_words("img:0", topn=1)[0][0] in again.wv.key_to_index]))
"""
    env = {**os.environ, "PYTHONPATH": str(target), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    package, kernel, n_images, answered = json.loads(res.stdout.splitlines()[-1])
    assert package.startswith(str(target)) and kernel.startswith(str(target)), (package, kernel)
    assert n_images == 60 and answered
    res = subprocess.run([str(target / "bin" / "im2vec"), "--version"], cwd=tmp_path, env=env,
                         capture_output=True, text=True)
    assert res.returncode == 0 and "0.1.0" in res.stdout, res.stdout + res.stderr


def _dist_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_module_the_package_imports_at_its_top_is_a_declared_dependency():
    """A third-party module imported at a module's top (outside try) must come with `pip install
    gensim-im2vec`: gensim_im2vec.corpusfile imports smart_open, which only gensim's own requirement
    brought in; a top-level import guarded by try must belong to an extra."""
    import ast
    import importlib.metadata

    import gensim_im2vec

    project = _pyproject()["project"]
    required = {_dist_name(r) for r in project["dependencies"]}
    extras = {_dist_name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    dists = importlib.metadata.packages_distributions()
    def top_imports(body, guarded: bool):
        """(module name, inside try) of the imports a module runs when it is imported."""
        for stmt in body:
            if isinstance(stmt, ast.Import):
                yield from ((a.name, guarded) for a in stmt.names)
            elif isinstance(stmt, ast.ImportFrom) and stmt.level == 0:
                yield stmt.module, guarded
            elif isinstance(stmt, ast.Try):
                for part in (stmt.body, *(h.body for h in stmt.handlers), stmt.orelse, stmt.finalbody):
                    yield from top_imports(part, True)
            elif isinstance(stmt, ast.If) and not (isinstance(stmt.test, ast.Name) and stmt.test.id == "TYPE_CHECKING"):
                yield from top_imports(stmt.body + stmt.orelse, guarded)

    undeclared = []
    for path in sorted(Path(gensim_im2vec.__file__).parent.glob("*.py")):
        for name, guarded in top_imports(ast.parse(path.read_text(encoding="utf-8")).body, False):
            top = name.partition(".")[0]
            if top in sys.stdlib_module_names or top in ("gensim_im2vec", "__future__"):
                continue
            declared = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
            if not declared & (required | extras if guarded else required):
                undeclared.append(f"{path.name}: {name} ({', '.join(sorted(declared))})")
    assert not undeclared, undeclared
