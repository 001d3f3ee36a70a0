"""The docs state commands, scripts, links, paths, test names and settings: each is checked
against the repository, so that the pages cannot drift from it (CONTRIBUTING.md, Docs)."""

import os
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest
from openbis_jupyterhub.hub import settings

REPO = Path(__file__).resolve().parents[2]
# the pages by reader; the changelog is history, so only its links are checked, as are the
# links of the parts' own READMEs
PAGES = [
    "README.md",
    "CONTRIBUTING.md",
    "SECURITY.md",
    "benchmarks/README.md",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
]
PARTS = ["certs", "deploy/kubernetes", "jupyterhub_config.d", "labextension", "notebook_templates"]
PARTS += ["openbis_double", "images/build-ca", "images/wheels"]
LINKED = [*PAGES, "CHANGELOG.md", *(f"{part}/README.md" for part in PARTS)]

# names in capitals the pages mention that are neither settings (settings.py) nor in
# .env.example nor read by a script: each with the file that defines it
OTHER_NAMES = {
    "ANALYSIS_NOTEBOOK": "openbis_double/seed.py",  # openBIS's dataset type of saved analyses
    "JUPYTERHUB_API_TOKEN": "tests/support/attacks.py",  # JupyterHub's, in each server
    "OPENBIS_CA_CERT": "hub/openbis_jupyterhub/contract.py",  # the hub sets it in servers
    "NBCONVERT_DISABLE_CONFIG_EXPORTERS": "images/singleuser/Dockerfile",
    "OPENBIS_IMAGE": "compose.openbis.yaml",
    "TEST_IMAGE_TAG": "tests/support/images.py",
    "BACKUP": "Makefile",  # make backup / make restore's argument
    "PATH": "tests/run.sh",
}


def text(page: str) -> str:
    return (REPO / page).read_text()


def code(page: str) -> str:
    """What a reader would type: inline code spans, indented and fenced code blocks."""
    source = text(page)
    spans = re.findall(r"`([^`]+)`", source)
    blocks = re.findall(r"(?:^|\n\n)((?:    .*\n?)+)", source)
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", source, re.M | re.S)
    return "\n".join([*spans, *blocks, *fenced])


def named(pattern: str, pages=PAGES, where=code) -> list[tuple[str, str]]:
    return sorted({(page, m) for page in pages for m in re.findall(pattern, where(page))})


@cache
def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", text("Makefile"), re.M))


@pytest.mark.parametrize(("page", "target"), named(r"(?m)(?:^|[\s;&(])make ([a-z][\w-]*)"))
def test_every_make_target_named_is_in_the_makefile(page, target):
    assert target in make_targets(), f"{page} names `make {target}`, which the Makefile lacks"


def test_the_pages_name_make_targets_at_all():
    assert {"trial", "up", "backup", "restore", "swarm-up", "test"} <= {
        target for _, target in named(r"(?m)(?:^|[\s;&(])make ([a-z][\w-]*)")
    }


def layout_scripts(page: str) -> set[str]:
    """The scripts CONTRIBUTING's layout table lists in its `scripts/` row."""
    row = re.search(r"^\| `scripts/` \|.*$", text(page), re.M)
    return set(re.findall(r"`([a-z][\w-]*)`", row.group(0))) if row else set()


SCRIPTS = sorted(
    {*named(r"\bscripts/([a-z][\w.-]*)", where=text)}
    | {("CONTRIBUTING.md", script) for script in layout_scripts("CONTRIBUTING.md")}
)


def test_the_layout_lists_every_script():
    commands = {p.name for p in (REPO / "scripts").iterdir() if os.access(p, os.X_OK)}
    assert layout_scripts("CONTRIBUTING.md") == commands


@pytest.mark.parametrize(("page", "script"), SCRIPTS)
def test_every_script_named_exists_and_answers_help(page, script):
    path = REPO / "scripts" / script
    assert path.is_file(), f"{page} names scripts/{script}, which does not exist"
    if script.endswith(".sh"):  # libraries the scripts source, not commands
        return
    assert os.access(path, os.X_OK), f"scripts/{script} is not executable"
    result = subprocess.run(
        [str(path), "--help"], capture_output=True, text=True, timeout=30, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: scripts/{script}")


@pytest.mark.parametrize(("page", "module"), named(r"\bbenchmarks\.([a-z_]+)\b", where=text))
def test_every_benchmark_named_is_a_module(page, module):
    assert (REPO / "benchmarks" / f"{module}.py").is_file(), f"{page}: benchmarks.{module}"


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    source = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
    seen, result = {}, set()
    for heading in re.findall(r"^#{1,6} (.+)$", source, re.M):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


LINKS = named(r"\]\(([^)\s]+)\)", pages=LINKED, where=text)


@pytest.mark.parametrize(
    ("page", "link"), [(p, link) for p, link in LINKS if not re.match(r"[a-z]+:", link)]
)
def test_every_relative_link_reaches_a_file_and_heading(page, link):
    path, _, anchor = link.partition("#")
    target = (REPO / page).parent / path if path else REPO / page
    assert target.exists(), f"{page} links {link}: no {target.relative_to(REPO)}"
    if anchor and target.suffix == ".md":
        assert anchor in anchors(target.resolve()), f"{page} links {link}: no such heading"


def test_slugs_are_githubs():
    assert slug("Settings (`.env`)") == "settings-env"
    assert slug("Upgrades (user data stays)") == "upgrades-user-data-stays"
    assert slug("What is tested, and how") == "what-is-tested-and-how"


# a path in code that starts with one of the repository's top-level folders names a file or
# folder of it; the package's modules may be named from the package (`hub/docker.py`)
TOP = sorted(p.name for p in REPO.iterdir() if p.is_dir() and not p.name.startswith("."))
PATHS = named(r"(?<![\w./~}-])((?:" + "|".join(map(re.escape, TOP)) + r")/[\w.*/-]*)")


@pytest.mark.parametrize(("page", "path"), PATHS)
def test_every_repository_path_named_exists(page, path):
    path = path.rstrip(".")
    if "*" in path:  # a pattern: its folder exists (`jupyterhub_config.d/*.py` may match none)
        path = path[: path.index("*")].rpartition("/")[0]
    roots = [REPO, REPO / "hub" / "openbis_jupyterhub"]
    assert any(list(root.glob(path)) for root in roots), f"{page} names {path}: no such file"


@cache
def defined_tests() -> set[str]:
    return {
        name
        for source in (REPO / "tests").rglob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_\w+)", source.read_text(), re.M)
    }


@pytest.mark.parametrize(("page", "name"), named(r"(?m)^(test_\w+)$"))
def test_every_test_named_exists(page, name):
    assert name in defined_tests(), f"{page} names {name}, which no test module defines"


@cache
def known_names() -> set[str]:
    names = {s.name for s in settings.SETTINGS}
    names |= set(re.findall(r"^#?\s*(\w+)=", text(".env.example"), re.M))
    for script in (REPO / "scripts").iterdir():
        names |= set(re.findall(r"\b[A-Z][A-Z0-9_]+\b", script.read_text()))
    return names


CAPITALS = r"\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z][A-Z0-9_]*(?==))"


@pytest.mark.parametrize(("page", "name"), named(CAPITALS, where=text))
def test_every_variable_named_is_a_setting(page, name):
    if name in OTHER_NAMES:
        assert name in text(OTHER_NAMES[name]), f"{OTHER_NAMES[name]} no longer has {name}"
        return
    assert name in known_names(), (
        f"{page} names {name}: not a setting (settings.py, .env.example), not in a script's "
        "scripts, not in OTHER_NAMES"
    )
