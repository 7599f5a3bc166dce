"""Repository hygiene: no key-shaped secret is committed, and generated docs stay true to the code."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from bisonsync.settings import configuration_markdown

ROOT = Path(__file__).resolve().parents[2]

# JWTs, Supabase secret keys, Slack webhook URLs, Email Bison `N|token` API keys.
KEY_SHAPED = re.compile(
    r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    r"|sb_secret_[A-Za-z0-9_-]{8,}"
    r"|hooks\.slack\.com/services/[A-Za-z0-9/]+"
    r"|\b[0-9]{1,4}\|[A-Za-z0-9]{30,}"
)
# Only the public local defaults, and only in .env.example.
ALLOWED_FILES = {".env.example"}


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / p for p in out.decode().split("\0") if p]


def find_key_shaped(text: str) -> list[str]:
    return KEY_SHAPED.findall(text)


def test_scanner_catches_each_key_shape() -> None:
    jwt_like = "eyJ" + "a" * 12 + ".eyJ" + "b" * 12 + "." + "c" * 12
    samples = [jwt_like, "sb_secret_" + "x" * 12, "hooks.slack.com/" + "services/T0/B0/abc", "12|" + "Z" * 32]
    for sample in samples:
        assert find_key_shaped(f"value = '{sample}'"), sample
    assert not find_key_shaped("sb_publishable_abc postgres://postgres:postgres@127.0.0.1")


def test_no_key_shaped_strings_in_tracked_files() -> None:
    leaks = []
    for path in tracked_files():
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED_FILES or not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        leaks += [f"{rel}: {m[:12]}..." for m in find_key_shaped(text)]
    assert not leaks, f"key-shaped strings committed: {leaks}"


def test_configuration_reference_is_current() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    assert doc == configuration_markdown(), "regenerate with: bisonsync config --markdown > docs/configuration.md"


def test_lock_file_pins_every_declared_dependency_with_hashes() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {
        m.group(1).lower().replace("_", "-"): m.group(0)
        for m in re.finditer(r"^([A-Za-z0-9_.-]+)==\S+", lock, flags=re.M)
    }
    missing = []
    for spec in declared:
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-")
        if name == project["name"]:  # an extra pulling in another extra (`bisonsync[service]`)
            continue
        if name not in pinned:
            missing.append(name)
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", lock.strip())
    assert all("--hash=sha256:" in block for block in blocks if "==" in block.split("\n", 1)[0])


# README and docs stand on their own: no citation of documents outside the repository (a design spec's sections,
# a `shared/` folder), and every relative link resolves to a file inside the repository.
OUTSIDE_REFERENCE = re.compile(r"§|(?<![\w.-])shared/|/work/|\bthe spec\b|\bspec's\b|\bspec §", re.I)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def test_docs_cite_nothing_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}"
        for path in _docs()
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_REFERENCE.search(line)
    ]
    assert not found, "rewrite as self-contained statements:\n" + "\n".join(found)


def test_docs_relative_links_stay_inside_the_repository() -> None:
    broken = []
    for path in _docs():
        for target in LINK.findall(path.read_text()):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert not broken, broken
