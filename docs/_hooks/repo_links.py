"""mkdocs hook: links from a page to repository files outside docs/ (source files,
protos) become links to copies of those files in the site, under ``_repo/``.

A link whose target does not exist in the repository is left alone, so mkdocs reports
it (and ``mkdocs build --strict`` fails), like any other broken link.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

_LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")
_PREFIX = "_repo"


def _outside_target(page_uri: str, target: str, docs_dir: Path, repo: Path) -> str | None:
    """The repository-relative path a page link points to, if it leaves docs/."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return None
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(page_uri), target))
    if not joined.startswith("../"):
        return None
    path = (docs_dir / joined).resolve()
    try:
        rel = path.relative_to(repo)
    except ValueError:
        return None
    return rel.as_posix() if path.is_file() else None


def _pages(files: Files) -> list[File]:
    return [f for f in files if f.src_uri.endswith(".md") and f.abs_src_path]


def on_files(files: Files, config: Any) -> Files:
    docs_dir = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    wanted: set[str] = set()
    for page in _pages(files):
        text = Path(page.abs_src_path).read_text(encoding="utf-8")
        for match in _LINK.finditer(text):
            rel = _outside_target(page.src_uri, match.group(2), docs_dir, repo)
            if rel is not None:
                wanted.add(rel)
    for rel in sorted(wanted):
        files.append(File.generated(config, f"{_PREFIX}/{rel}", abs_src_path=str(repo / rel)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    docs_dir = Path(config["docs_dir"]).resolve()
    repo = Path(config["config_file_path"]).resolve().parent
    uri = page.file.src_uri

    def rewrite(match: re.Match[str]) -> str:
        rel = _outside_target(uri, match.group(2), docs_dir, repo)
        if rel is None:
            return match.group(0)
        new = posixpath.relpath(f"{_PREFIX}/{rel}", posixpath.dirname(uri) or ".")
        return f"{match.group(1)}{new}{match.group(3)}"

    return _LINK.sub(rewrite, markdown)
