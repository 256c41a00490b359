"""Every command that README.md and docs/*.md quote still parses against today's argument parsers.

The project's rule is that each figure in the documentation is reproduced by a command in the
repository. An option renamed or removed later leaves its quoted command failing at once with
"unrecognized arguments" (argparse, exit 2) or "No such option" (click), and the figure with no way
to reproduce it. This test finds the commands (in code blocks and in inline code, backslash-continued
lines and code spans that wrap over lines included), expands their optional parts (``[--mode joint]``
present and absent) and alternatives (``--limit 200|1000``), puts plausible values in for
placeholders (``N``, ``FILE``, ``MODEL``) and parses each without running anything:

- ``python benchmarks/X.py ...`` / ``python examples/X.py ...``: the script's ``main()`` is called
  with ``argparse.ArgumentParser.parse_args`` replaced by one that parses the quoted arguments and
  stops there (every script builds its parser at the top of ``main()``);
- ``im2vec COMMAND ...``: the click group's contexts are made down to the command (no callback is
  invoked; the paths' "must exist" checks are off, since the quoted files are a reader's);
- ``make TARGET [VAR=VALUE]``: the Makefile has the target (and uses the variable).

An option given by a prefix of its name (``--seed`` for ``--seeds``) counts as missing, and a
benchmark's ``--set NAME=VALUE`` must name an Im2Vec option (``--demo-set``: a DemoConfig field):
both pass argparse, but a renamed option hides behind the first and a removed one fails the run
after it has begun. A command named in passing in the prose (`im2vec train --pretrained`) may leave
out its required arguments and its last option's value; on a code line of its own it may not.
Checks after parsing (an option that only makes sense with another, a file that must exist) are not
made: the command is not run.
"""

import argparse
import ast
import contextlib
import importlib.util
import io
import itertools
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

#: What starts a command: optional environment assignments, then a script of the repository (its folder and
#: `python` may be left out: `zero_shot_study.py --mode joint`), the CLI or make.
_START = re.compile(r"(?:[A-Z_]+=\S+\s+)*(?:(?:python3?\s+)?(?:benchmarks/|examples/)?(?P<script>\w+)\.py\b|im2vec\s+[a-z]|"
                    r"make\s+[a-z])")
SCRIPTS = {p.stem: f"{p.parent.name}/{p.name}" for folder in ("benchmarks", "examples")
           for p in (ROOT / folder).glob("*.py") if not p.name.startswith("_")}

#: Placeholders a reader replaces, with a value of the kind the option takes (None: left out).
PLACEHOLDERS = {
    "N": "2", "P": "2", "S": "1", "FILE": "file.txt", "DIR": "some_dir",
    "MODEL": "model.im2vec", "STORE": "feats", "DOCS": "docs.txt", "IMAGE_DIR": "photos", "SOURCE": "photos",
    "W2V": "text.w2v", "NAME": "emoji", "WEIGHTS": None, "FLAGS": None, "…": None,
}

#: A setting of the reader's (``--set NAME=VALUE``, ``--set ...``): one that the option takes.
SETTINGS = {"--set": "space_alpha=0.03", "--demo-set": "seed=1"}

#: Commands that the docs quote as history, saying beside them ("option removed on DATE in COMMIT") that
#: today's code no longer runs them: by their text, each with why.
NOT_RUNNABLE = {
    # docs/joint-space.md, "the one-tag images for the readout only": run at d94ce4e, whose option
    # space_min_words was reverted in 5d2d87a the same day ("The option went with the measurement.")
    "OMP_NUM_THREADS=1 python benchmarks/space_seeds.py --modes joint --demo-set min_image_words=1 "
    "--set space_min_words=2": "space_min_words was removed on 2026-12-05 (5d2d87a); the doc says so",
}


@dataclass(frozen=True)
class Quoted:
    where: str  # "docs/scale.md:370"
    text: str  # the command as quoted, its comment and line continuations taken out
    inline: bool  # in a code span of the prose, not on a code line of its own
    comment: str = ""  # what follows `#`: options that it names give more variants

    def __str__(self) -> str:
        return f"{self.where}: {self.text}" + (f"  # {self.comment}" if self.comment else "")


def _commands_in(text: str, where: str, inline: bool) -> list[Quoted]:
    """The commands a code span or code line holds (`a && b` holds two)."""
    text, _, comment = (" " + " ".join(text.split())).partition(" # ")
    out = []
    for part in re.split(r"\s*(?:&&|;)\s+", text.strip()):
        m = _START.match(part)
        if m and (not m["script"] or m["script"] in SCRIPTS):  # (not `python setup.py build_ext`)
            out.append(Quoted(where, part, inline, comment.strip()))
    return out


def quoted_commands(path: Path) -> list[Quoted]:
    """The commands that `path` quotes, in order: code lines that start with one (continued by a
    trailing backslash) and inline code spans, which may wrap over lines of their paragraph."""
    name = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Quoted] = []
    prose: list[tuple[int, str]] = []  # (line number, text); "" for lines that are no paragraph's
    i, fenced, code = 0, False, False  # code: in an indented code block (after a blank line)
    while i < len(lines):
        line = lines[i]
        code = line.startswith("    ") and (code or i == 0 or not lines[i - 1].strip())
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose.append((i + 1, ""))
        elif (fenced or code) and _START.match(line.strip()):
            start, text = i + 1, line.strip()
            while text.endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text[:-1] + " " + lines[i].strip()
            found += _commands_in(text, f"{name}:{start}", inline=False)
            prose.append((start, ""))
        else:
            prose.append((i + 1, "" if fenced else line))
        i += 1
    for is_text, group in itertools.groupby(prose, key=lambda item: bool(item[1].strip())):
        if not is_text:
            continue
        group = list(group)
        paragraph = "\n".join(text for _, text in group)
        ends = list(itertools.accumulate(len(text) + 1 for _, text in group))
        for m in re.finditer(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", paragraph, flags=re.S):
            line_no = group[next(k for k, end in enumerate(ends) if m.start(2) < end)][0]
            found += _commands_in(m.group(2), f"{name}:{line_no}", inline=True)
    found.sort(key=lambda q: int(q.where.rpartition(":")[2]))
    return found


ALL = [q for doc in DOCS for q in quoted_commands(doc)]


def _tokens(text: str) -> list[str]:
    """`text`'s arguments, placeholders filled in, `OMP_NUM_THREADS=1` and `python` taken off."""
    tokens: list[str] = []
    for tok in shlex.split(text):
        if tokens and tokens[-1] in SETTINGS and tok in ("...", "NAME=VALUE"):
            tokens.append(SETTINGS[tokens[-1]])
        elif tok == "...":  # after an option, a value of the reader's (`--pretrained ...`); else "and so on"
            if tokens and tokens[-1].startswith("-"):
                tokens.append("x")
        elif tok in PLACEHOLDERS:
            if PLACEHOLDERS[tok] is not None:
                tokens.append(PLACEHOLDERS[tok])
        else:
            tokens.append(re.sub(r"(?<==)[NP]$", "2", tok))  # `--demo-set seed=N`
    while tokens and re.fullmatch(r"[A-Z_]+=\S*", tokens[0]):
        tokens.pop(0)
    if tokens and tokens[0] in ("python", "python3"):
        tokens.pop(0)
    if tokens and tokens[0].endswith(".py"):
        tokens[0] = SCRIPTS.get(Path(tokens[0]).stem, tokens[0])
    return tokens


def variants(text: str, comment: str = "") -> list[list[str]]:
    """The argument lists a quoted command stands for: each optional part (``[...]``) absent, all
    present and each present on its own (``[--a | --b]``: each of the two); each alternative of
    ``a|b`` (the i-th of each at once); placeholders filled in. A bracket that holds words
    (``[the same --set]``) or a placeholder (``[FLAGS]``) is left out. A comment that names options
    (``# --seeds 1 2 3``, ``# or both; --alphas 0.02, 0.01``) adds the command with each ``;``-piece
    that starts with ``--`` appended, ``, `` separating alternatives of it."""
    parts = re.split(r"(\[[^\[\]]*\])", text)
    optional = {k: [alt.strip() for alt in p[1:-1].split(" | ")] for k, p in enumerate(parts)
                if p.startswith("[") and re.match(r"\[\s*-", p)}
    choices: list[dict[int, str]] = [{}, {k: alts[0] for k, alts in optional.items()}]
    choices += [{k: alt} for k, alts in optional.items() for alt in alts]
    extras = [""]
    for piece in comment.split(";"):
        option, _, values = re.sub(r":\s.*", "", piece.strip()).partition(" ")  # (`--new N: what it does`)
        if option.startswith("--"):
            extras += [f"{option} {value}" for value in values.split(", ")]
    out: list[list[str]] = []
    for chosen, extra in itertools.product(choices, extras):
        kept = [chosen.get(k, "") if p.startswith("[") else p for k, p in enumerate(parts)]
        tokens = _tokens(" ".join(kept) + " " + _optional_in(extra))
        alternatives = [tok.split("|") if "|" in tok and not tok.startswith("-") else [tok] for tok in tokens]
        for j in range(max(len(a) for a in alternatives)):
            args = [a[min(j, len(a) - 1)] for a in alternatives]
            if args not in out:
                out.append(args)
    return out


def _optional_in(extra: str) -> str:
    """A comment's piece with its own optional parts in (``[--set NAME=VALUE]``)."""
    return re.sub(r"\[\s*(-[^\[\]]*)\]", r"\1", extra)


# --- the parsers ------------------------------------------------------------------------------------

class _Parsed(Exception):
    def __init__(self, namespace: argparse.Namespace) -> None:
        self.namespace = namespace


_SCRIPTS: dict[str, object] = {}


def _script(rel: str):
    if rel not in _SCRIPTS:
        path = ROOT / rel
        assert path.is_file(), f"{rel}: no such script in the repository"
        spec = importlib.util.spec_from_file_location(f"_documented_{path.parent.name}_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # as `python benchmarks/<script>.py` has it (`_common`)
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(path.parent))
        _SCRIPTS[rel] = module
    return _SCRIPTS[rel]


def parse_script(rel: str, args: list[str], partial: bool = False) -> str | None:
    """None when ``python REL ARGS`` parses, else argparse's complaint. The script's ``main()`` runs
    only up to its ``parse_args``, which parses `args` and stops the run. `partial`: `args` may leave
    out required arguments and the value of their last option (a command named in passing)."""
    module = _script(rel)
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(self, _args=None, namespace=None):
        self.allow_abbrev = False  # `--seed` for `--seeds` runs, but as the option's name it is gone
        given = args
        if partial:  # (argparse says what is missing before what it does not know, and stops)
            for action in self._actions:
                action.required = False
            for group in self._mutually_exclusive_groups:
                group.required = False
            last = self._option_string_actions.get(args[-1]) if args else None
            if last is not None and last.nargs != 0:
                given = args[:-1]
        raise _Parsed(original(self, given, namespace))

    err = io.StringIO()
    argparse.ArgumentParser.parse_args = parse_and_stop
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            module.main()
    except _Parsed as done:
        ns = done.namespace
    except SystemExit as e:
        said = (err.getvalue().strip().splitlines() or [""])[-1]
        return f"python {rel} {shlex.join(args)}: exit {e.code}: {said}"
    else:
        raise AssertionError(f"{rel}: main() returned without parsing its arguments")
    finally:
        argparse.ArgumentParser.parse_args = original
    if rel == "benchmarks/feature_noise.py" and ns.script:  # runs another benchmark, its arguments after it
        return parse_script(ns.script, ns.args, partial)
    return _check_settings(f"python {rel} {shlex.join(args)}", ns)


def _check_settings(command: str, ns: argparse.Namespace) -> str | None:
    """The benchmarks' ``--set NAME=VALUE`` is an Im2Vec option and ``--demo-set NAME=VALUE`` a
    DemoConfig field, VALUE a Python literal (``_common.settings``): argparse takes any string, and a
    name since removed fails only once the run has begun."""
    import dataclasses
    import inspect

    from gensim_im2vec import Im2Vec
    from gensim_im2vec.pipeline import DemoConfig

    names = {"set": set(inspect.signature(Im2Vec.__init__).parameters) - {"self"},
             "demo_set": {f.name for f in dataclasses.fields(DemoConfig)}}
    for dest, known in names.items():
        for pair in getattr(ns, dest, None) or []:
            name, _, value = pair.partition("=")
            option = "--" + dest.replace("_", "-")
            if name not in known:
                return f"{command}: {option} {pair}: {'Im2Vec' if dest == 'set' else 'DemoConfig'} has no {name!r}"
            try:
                ast.literal_eval(value)
            except (ValueError, SyntaxError):
                return f"{command}: {option} {pair}: {value!r} is not a Python literal"
    return None


def _click_commands(cmd: click.Command):
    yield cmd
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            yield from _click_commands(sub)


@pytest.fixture(scope="module")
def cli():
    """The CLI's root group, its paths' existence checks off for the module's tests (a quoted
    command's files are the reader's)."""
    from gensim_im2vec import cli

    with pytest.MonkeyPatch.context() as mp:
        for cmd in _click_commands(cli.main):
            for param in cmd.params:
                if isinstance(param.type, click.Path):  # (and whatever the working folder holds)
                    for check_of in ("exists", "file_okay", "dir_okay"):
                        mp.setattr(param.type, check_of, check_of != "exists")
        yield cli.main


def _fill(param: click.Parameter) -> list[str]:
    """A value for a required `param` that a command named in passing leaves out."""
    value = param.type.choices[0] if isinstance(param.type, click.Choice) else "1"
    return [param.opts[0], value] if isinstance(param, click.Option) else [value]


def parse_cli(group: click.Group, args: list[str], partial: bool = False) -> str | None:
    """None when ``im2vec ARGS`` parses down to its command (no callback runs), else click's
    complaint. `partial`: `args` may leave out required arguments and options and the value of
    their last option (a command named in passing): those are filled in and the rest still checked."""
    given = list(args)
    while True:
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cmd, ctx = group, group.make_context("im2vec", list(args))
                while isinstance(cmd, click.Group):
                    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
                    name, cmd, rest = cmd.resolve_command(ctx, [*protected, *ctx.args])
                    ctx = cmd.make_context(name, rest, parent=ctx)
            return None
        except click.exceptions.Exit as e:  # --help, --version
            return None if e.exit_code == 0 else f"im2vec {shlex.join(given)}: exit {e.exit_code}"
        except click.MissingParameter as e:
            if not partial or e.param is None or len(args) > len(given) + 20:
                return f"im2vec {shlex.join(given)}: {e.format_message()}"
            args = [*args, *_fill(e.param)]
        except click.BadOptionUsage as e:
            if not partial or "requires" not in e.format_message() or args[-1] != e.option_name:
                return f"im2vec {shlex.join(given)}: {e.format_message()}"
            args = [*args, "1"]
        except click.ClickException as e:
            return f"im2vec {shlex.join(given)}: {e.format_message()}"


def parse_make(args: list[str]) -> str | None:
    """None when the Makefile has each target of ``make ARGS`` and uses each variable it sets."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+)\s*:(?!=)", makefile, flags=re.M))
    for arg in args:
        name, is_variable, _ = arg.partition("=")
        if is_variable and not re.search(rf"\$[({{]{re.escape(name)}[)}}]", makefile):
            return f"make {shlex.join(args)}: the Makefile uses no variable {name}"
        if not is_variable and not arg.startswith("-") and arg not in targets:
            return f"make {shlex.join(args)}: the Makefile has no target {arg!r} (it has {sorted(targets)})"
    return None


def check(args: list[str], cli_group: click.Group, partial: bool = False) -> str | None:
    """None when `args` (a quoted command's, ``python`` taken off) parses, else why not."""
    if args[0] == "im2vec":
        return parse_cli(cli_group, args[1:], partial)
    if args[0] == "make":
        return parse_make(args[1:])
    return parse_script(args[0], args[1:], partial)


# --- the tests --------------------------------------------------------------------------------------

def test_the_docs_quote_commands_of_each_kind():
    """The extraction finds what the docs quote: not a handful, and each kind (a regression in it would
    leave every command below unchecked)."""
    assert len(ALL) >= 150, [str(q) for q in ALL]
    texts = [q.text for q in ALL]
    for kind in ("python benchmarks/", "im2vec ", "make ", "OMP_NUM_THREADS=1 python"):
        assert any(t.startswith(kind) for t in texts), kind
    wrapped = "python benchmarks/word_similarity_seeds.py --seeds 1 2 3"  # an inline span over two lines
    assert any(q.where.startswith("docs/experiments.md") and q.text.startswith(wrapped) for q in ALL)
    assert set(NOT_RUNNABLE) <= set(texts), "an allowlisted command is no longer quoted: take it off the list"


def test_variants_expand_options_alternatives_and_placeholders():
    assert variants("python benchmarks/zero_shot_study.py [--mode joint] --demo-set seed=N") == [
        ["benchmarks/zero_shot_study.py", "--demo-set", "seed=2"],
        ["benchmarks/zero_shot_study.py", "--mode", "joint", "--demo-set", "seed=2"]]
    assert variants("OMP_NUM_THREADS=1 python benchmarks/workers_quality.py --limit 200|1000 [the same --set]") == [
        ["benchmarks/workers_quality.py", "--limit", "200"], ["benchmarks/workers_quality.py", "--limit", "1000"]]
    assert variants("im2vec split DOCS -o DIR [-f STORE]")[1] == ["im2vec", "split", "docs.txt", "-o", "some_dir",
                                                                 "-f", "feats"]


@pytest.mark.parametrize("bogus", [
    "python benchmarks/space_seeds.py --modes two-stage --no-such-option 1",
    "python benchmarks/feature_noise.py --noise 2 benchmarks/space_seeds.py --no-such-option",
    "python benchmarks/space_seeds.py --seed 1",  # `--seeds` by its prefix: runs, but no such option
    "python benchmarks/space_seeds.py --set space_no_such_option=1",
    "python benchmarks/zero_shot_study.py --demo-set no_such_field=1",
    "python benchmarks/zero_shot_study.py --set space_readout=half",
    "python examples/train_folder.py photos -o m.im2vec --no-such-option",
    "im2vec train docs.txt -f feats/ -o m.im2vec --no-such-option",
    "im2vec datasets list --no-such-option",
    "im2vec train docs.txt -f feats/ -o m.im2vec --epochs many",
    "im2vec no-such-command",
    "im2vec index --kind no-such-kind",  # (named in passing: MODEL left out, the rest still checked)
    "python examples/two_stage.py --sg",  # (argparse: "required" first, "unrecognized" only then)
    "python benchmarks/space_seeds.py --no-such-option --set",
    "make no-such-target",
    "make gpu-check NO_SUCH_VARIABLE=1",
])
def test_the_check_refuses_what_does_not_parse(bogus, cli):
    (args,) = variants(bogus)
    assert check(args, cli, partial=True) is not None  # (and so without `partial`)


@pytest.mark.parametrize("named", [
    "im2vec extract photos", "im2vec train --pretrained", "im2vec index --tags",
    "python examples/train_folder.py --epochs 2", "python examples/two_stage.py --train-outputs",
    "python benchmarks/space_seeds.py --set",
])
def test_a_command_named_in_passing_may_leave_out_what_is_required(named, cli):
    """In the prose (`im2vec train --pretrained` follows the library) a command may leave out its
    required arguments and its last option's value; on a line of its own, to be run, it may not."""
    (args,) = variants(named)
    assert check(args, cli, partial=True) is None
    assert check(args, cli) is not None


def _ids(quoted: list[Quoted]) -> list[str]:
    """``docs/scale.md:285``, ``docs/scale.md:285#2`` for a second command on that line."""
    seen: dict[str, int] = {}
    out = []
    for q in quoted:
        seen[q.where] = seen.get(q.where, 0) + 1
        out.append(q.where + (f"#{seen[q.where]}" if seen[q.where] > 1 else ""))
    return out


@pytest.mark.parametrize("quoted", ALL, ids=_ids(ALL))
def test_documented_command_parses(quoted, cli):
    if quoted.text in NOT_RUNNABLE:  # skipped while the doc says, beside it, that it no longer runs
        doc, _, line = quoted.where.rpartition(":")
        beside = " ".join((ROOT / doc).read_text(encoding="utf-8").splitlines()[int(line) - 1:int(line) + 3])
        assert "option removed" in beside, f"{quoted}: the doc no longer says the command is history"
        pytest.skip(NOT_RUNNABLE[quoted.text])
    failures = [err for args in variants(quoted.text, quoted.comment) if (err := check(args, cli, quoted.inline))]
    assert not failures, f"{quoted}\n" + "\n".join(failures)
