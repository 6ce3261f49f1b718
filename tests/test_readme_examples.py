"""The ``secli`` examples of README.md and of every page in docs/ run as written, and their links resolve.

Every line of a ```bash block that starts with ``secli `` (a trailing ``\\`` joins the next line)
is one example. The pages are read in the fixed order of ``PAGES`` (README.md, then the manual in
the order of README's "Where to read on" list) and all their examples run in that order in ONE
shared temporary folder holding a copy of ``examples/``, so a file made by one example
(``--out se_r50.pt`` in docs/inject.md) is there for the next, also on a later page
(``secli complexity se_r50.pt`` in docs/complexity.md, ``secli report r18.json`` after README's
tour). A line whose comment says ``needs: gpu``, ``internet``, ``imagenet`` or ``slow`` (a comma
list) is skipped; a file that only a skipped example makes is made by a cheap stand-in from
``STAND_INS`` (a tiny training run) or, where there is none, the examples using it are skipped too.
A file no earlier example makes is a mistake in the docs and fails the test.

Every relative Markdown link of these pages must name a file that exists, and an anchor
(``page.md#heading``, ``#heading``) a heading of that page, as GitHub spells heading anchors.
"""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import run

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The pages whose examples run, in this order, in one shared folder: README, then the manual in
#: the order of README's "Where to read on" list. Every docs/*.md page must be here.
PAGES = (
    "README.md",
    "docs/options.md",
    "docs/inject.md",
    "docs/networks.md",
    "docs/complexity.md",
    "docs/profile.md",
    "docs/report.md",
    "docs/train.md",
    "docs/visualize-excitation.md",
    "docs/export.md",
    "docs/guarantees.md",
    "docs/python-api.md",
    "docs/BENCHMARKS.md",
    "docs/DEPTH_STORY.md",
    "docs/ZOO.md",
    "docs/development.md",
)
#: What a ``needs:`` mark may name; anything else is a typo in the docs.
MARKS = {"gpu", "internet", "imagenet", "slow"}
NEEDS = re.compile(r"needs:\s*([a-z]+(?:\s*,\s*[a-z]+)*)")
OUTPUT_OPTIONS = {"--out", "-o", "--save-spec"}
FILE_SUFFIXES = (".pt", ".pth", ".yaml", ".yml", ".ts", ".pt2", ".json")


@dataclass
class Example:
    line: int
    text: str  # the command, comment removed
    needs: set[str]
    args: list[str] = field(default_factory=list)
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"

    @property
    def outputs(self) -> set[str]:
        return {_norm(b) for a, b in zip(self.args, self.args[1:]) if a in OUTPUT_OPTIONS}

    @property
    def inputs(self) -> set[str]:
        """Files (and --from-stats folders) this example reads, which earlier examples must make."""
        found = {_norm(b) for a, b in zip(self.args, self.args[1:]) if a == "--from-stats"}
        found |= {_norm(a) for a in self.args[1:] if a.endswith(FILE_SUFFIXES) and not a.startswith("-")}
        return found - self.outputs


def _norm(path: str) -> str:
    return path.rstrip("/")


def page_examples(text: str, page: str = "README.md") -> list[Example]:
    """The ``secli`` lines of the ```bash blocks of one page's ``text``."""
    examples: list[Example] = []
    for match in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
        first = text.count("\n", 0, match.start(1)) + 1
        lines = match.group(1).splitlines()
        index = 0
        while index < len(lines):
            start, line = index, lines[index]
            while line.rstrip().endswith("\\") and index + 1 < len(lines):
                index += 1
                line = line.rstrip()[:-1] + " " + lines[index].strip()
            index += 1
            if not line.startswith("secli "):
                continue
            args = shlex.split(line, comments=True)
            comment = line[line.index("#"):] if "#" in line else ""
            mark = NEEDS.search(comment)
            needs = {n.strip() for n in mark.group(1).split(",")} if mark else set()
            examples.append(Example(first + start, " ".join(args), needs, args, page))
    return examples


def all_examples() -> list[Example]:
    """Every page's examples, in the order of ``PAGES``."""
    return [e for page in PAGES for e in page_examples((ROOT / page).read_text(encoding="utf-8"), page)]


def _stand_in_training(block: str) -> Callable[[Path], None]:
    """A checkpoint like ``secli train resnet18 --block B --data synthetic ...`` makes, in seconds."""

    def make(path: Path) -> None:
        from secli import api

        api.train("resnet18", block=block, data="synthetic", epochs=1, train_size=20, val_size=10, image_size=32,
                  batch_size=10, device="cpu", out=path)

    return make


#: Files made by examples marked ``slow``, made here instead by something cheap of the same kind.
STAND_INS: dict[str, Callable[[Path], None]] = {
    "se_r18_synth.pt": _stand_in_training("se"),
    "sk_r18.pt": _stand_in_training("sk"),
}

EXAMPLES = all_examples()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs_examples")
    shutil.copytree(ROOT / "examples", folder / "examples")
    return folder


def test_every_docs_page_is_read_and_linked_from_the_readme() -> None:
    pages = {"README.md"} | {f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md")}
    assert set(PAGES) == pages, f"add to PAGES: {sorted(pages - set(PAGES))}; gone: {sorted(set(PAGES) - pages)}"
    linked = {target.split("#")[0] for target in _links(README.read_text(encoding="utf-8"))}
    assert pages - {"README.md"} <= linked, f"README.md does not link {sorted(pages - {'README.md'} - linked)}"


def test_the_pages_have_examples_and_every_mark_is_known() -> None:
    assert len(EXAMPLES) >= 20
    assert len([e for e in EXAMPLES if e.page == "README.md"]) >= 5  # the tour
    for example in EXAMPLES:
        assert example.needs <= MARKS, f"{example.where}: unknown mark {example.needs - MARKS}"


def test_reading_the_examples() -> None:
    text = "```bash\nsecli a --out x.pt   # needs: gpu, slow\nsecli b x.pt \\\n    --from-stats figs/\nls\n```\n"
    first, second = page_examples(text, "docs/x.md")
    assert (first.line, first.args, first.needs, first.outputs) == (2, ["secli", "a", "--out", "x.pt"], {"gpu", "slow"},
                                                                    {"x.pt"})
    assert (second.line, second.text, second.inputs) == (3, "secli b x.pt --from-stats figs/", {"x.pt", "figs"})
    assert second.where == "docs/x.md line 3"


@pytest.mark.parametrize("example", EXAMPLES,
                         ids=[f"{Path(e.page).stem}:L{e.line}:{' '.join(e.args[1:3])}" for e in EXAMPLES])
def test_docs_example_runs(example: Example, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if example.needs:
        pytest.skip(f"needs {', '.join(sorted(example.needs))}")
    earlier = EXAMPLES[: EXAMPLES.index(example)]
    for name in sorted(example.inputs):
        if (workdir / name).exists():
            continue
        makers = [e for e in earlier if any(name == made or name.startswith(made + "/") for made in e.outputs)]
        assert makers or name.startswith("examples/"), f"{example.where} reads {name}, which no earlier example makes"
        if name in STAND_INS:
            STAND_INS[name](workdir / name)
        else:
            pytest.skip(f"{name} is made by a skipped example ({makers[-1].where})")
    monkeypatch.chdir(workdir)
    result = run(*example.args[1:])
    assert result.exit_code == 0, f"{example.where}: {example.text}\n{result.output[-2000:]}"


def test_sites_named_in_an_example_exist_in_the_model_it_names(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also for examples that are skipped here (ImageNet): their model file comes from an example
    that runs, so the site names can be checked against it."""
    from secli import api

    monkeypatch.chdir(workdir)
    checked = 0
    for example in EXAMPLES:
        if "--sites" not in example.args or "--from-stats" in example.args:
            continue
        model = example.args[2]
        makers = [e for e in EXAMPLES[: EXAMPLES.index(example)] if model in e.outputs]
        if not makers or makers[-1].needs:
            continue
        if not (workdir / model).exists():
            assert run(*makers[-1].args[1:]).exit_code == 0
        have = {site.name for site in api.load_model(model).sites}
        wanted = set(example.args[example.args.index("--sites") + 1].split(","))
        assert wanted <= have, f"{example.where}: {model} has no site {sorted(wanted - have)}"
        checked += 1
    assert checked


# Links: [text](target) and ![alt](target), outside code; targets relative to the page's folder.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)


def _prose(text: str) -> str:
    """The page without fenced code blocks and inline code spans, which hold no links."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text, flags=re.S)


def _links(text: str) -> list[str]:
    return [target for target in LINK.findall(_prose(text)) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def anchors(text: str) -> set[str]:
    """The ``#anchors`` GitHub gives a page's headings: lowercase, punctuation dropped, spaces as
    hyphens, a repeated one numbered ``-1``, ``-2``..."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", text)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def test_reading_links_and_anchors() -> None:
    text = ("# `secli inject`\n## 3. Time them\n## Notes\n## Notes\n```bash\n# not a heading\n[x](gone.md)\n```\n"
            "See [a](docs/a.md#b), ![i](i.png), `[y](code.md)`, [w](https://example.org) and [c](#notes).\n")
    assert anchors(text) == {"secli-inject", "3-time-them", "notes", "notes-1"}
    assert _links(text) == ["docs/a.md#b", "i.png", "#notes"]


@pytest.mark.parametrize("page", PAGES)
def test_relative_links_resolve(page: str) -> None:
    source = ROOT / page
    broken = []
    for target in _links(source.read_text(encoding="utf-8")):
        path, _, anchor = target.partition("#")
        file = (source.parent / path).resolve() if path else source
        if not file.exists():
            broken.append(f"{target} (no file {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file})")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target} (no heading #{anchor} in {file.relative_to(ROOT)})")
    assert not broken, f"{page}: dead links: {broken}"
