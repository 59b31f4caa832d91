"""Benchmark result files: one table with its machine, settings, date and commit, as JSON.

A benchmark writes one (``--save-json PATH``, through `save_results`); the documentation
site renders every file under ``docs/benchmarks/`` as a table (``docs/hooks/generate.py``
calls `load_results` and `to_markdown`), so published figures are never pasted by hand.

The file holds: ``title``, ``command`` (to rerun it), ``machine``, ``settings`` (name ->
value), ``date`` (UTC), ``commit``, ``source`` (who wrote the file and how), ``columns``,
``rows`` (one list of cells per row, as many as ``columns``) and ``notes`` (or null).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.errors import BadInput
from core.settings import REPO_ROOT

FIELDS = (
    "title",
    "command",
    "machine",
    "settings",
    "date",
    "commit",
    "source",
    "columns",
    "rows",
    "notes",
)


def current_commit(repo: Path = REPO_ROOT) -> str:
    """The checkout's short commit (with ``+dirty`` when files differ), or ``unknown``."""
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def plain_machine() -> str:
    """CPU architecture, core count and system, for benchmarks that load no model."""
    return f"{platform.machine()} x{os.cpu_count()} CPU ({platform.system()})"


def save_results(
    path: str | Path,
    *,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    settings: Mapping[str, object],
    machine: str | None = None,
    command: str | None = None,
    notes: str | None = None,
) -> Path:
    """Write one result table as JSON (see the module's docstring); returns the path.

    ``machine`` defaults to `plain_machine` (pass `bench.machine.describe`'s line where models
    run), ``command`` to this process's command line; date and commit are filled in.

    Raises:
        BadInput: a row without one cell per column.
    """
    doc = {
        "title": title,
        "command": command or "python -m " + " ".join([_module_name(), *sys.argv[1:]]),
        "machine": machine or plain_machine(),
        "settings": {str(k): str(v) for k, v in settings.items()},
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": current_commit(),
        "source": "written by the benchmark (bench.results.save_results)",
        "columns": [str(c) for c in columns],
        "rows": [[str(c) for c in row] for row in rows],
        "notes": notes,
    }
    _check(doc, str(path))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def load_results(path: str | Path) -> dict:
    """Read a result file and check its fields.

    Raises:
        BadInput: not JSON, a field missing, or a row without one cell per column.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise BadInput(f"{path}: not a readable JSON result file ({e})") from e
    _check(doc, str(path))
    return doc


def to_markdown(doc: Mapping, *, heading: str | None = None) -> str:
    """The table, then where it comes from: command, machine, settings, date and commit."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [f"{heading} {doc['title']}", ""] if heading else []
    lines += [
        "| " + " | ".join(cell(c) for c in doc["columns"]) + " |",
        "|" + "---|" * len(doc["columns"]),
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in doc["rows"]]
    settings = ", ".join(f"`{k}={v}`" for k, v in doc["settings"].items())
    lines += [
        "",
        f"*Command:* `{doc['command']}`  ",
        f"*Machine:* {doc['machine']}  ",
        f"*Settings:* {settings or 'defaults'}  ",
        f"*Date:* {doc['date']}; *commit:* `{doc['commit']}`  ",
        f"*Source:* {doc['source']}",
    ]
    if doc.get("notes"):
        lines += ["", str(doc["notes"])]
    return "\n".join(lines) + "\n"


def _module_name() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec.name if spec is not None else Path(sys.argv[0]).stem


def _check(doc: object, where: str) -> None:
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: a result file is a JSON object")
    missing = [f for f in FIELDS if f not in doc]
    if missing:
        raise BadInput(f"{where}: result file lacks {', '.join(missing)}")
    if not isinstance(doc["settings"], dict):
        raise BadInput(f"{where}: settings must be an object of name -> value")
    width = len(doc["columns"])
    for n, row in enumerate(doc["rows"]):
        if len(row) != width:
            raise BadInput(f"{where}: row {n} has {len(row)} cells for {width} columns")
