"""The README and the documentation site say what the project really does.

The README's install, run and test commands are the ones `.ci/run` runs and the site's Getting
started shows; its headline figures are in the result files the site renders; the generated
blocks (settings, import contracts, benchmark tables, the HTTP API) are complete; and the site
builds offline with ``mkdocs build --strict``, with no asset fetched from another host.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from bench.results import load_results, save_results, to_markdown
from core.errors import BadInput
from core.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text()
CI = (REPO_ROOT / ".ci" / "run").read_text()
DOCS = REPO_ROOT / "docs"


def hooks():
    """docs/hooks/generate.py, loaded by path as mkdocs loads it."""
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def section_commands(text: str, heading: str) -> list[str]:
    """The command lines of the bash blocks under ``## heading`` (comments stripped)."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"no section {heading!r}"
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", match.group(1), re.S):
        for line in block.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line:
                lines.append(line)
    return lines


def ci_lines() -> list[str]:
    return [line.strip() for line in CI.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_commands_are_those_ci_runs() -> None:
    install = section_commands(README, "Install")
    assert install == ["python3 -m venv .venv && .venv/bin/pip install -r requirements.txt"]
    ci = ci_lines()
    assert "python3 -m venv .venv" in ci  # from zero, as the README
    dev = (REPO_ROOT / "requirements-dev.txt").read_text().splitlines()
    assert "-r requirements.txt" in dev  # CI's requirements-dev.txt installs the README's

    test = section_commands(README, "Test")
    apt = [c for c in test if "apt-get install" in c]
    assert len(apt) == 1
    packages = set(apt[0].split("install -y", 1)[1].split())
    ci_apt = [c for c in ci if "apt-get install" in c]
    assert len(ci_apt) == 1 and packages == set(ci_apt[0].split("-qq", 1)[1].split()), ci_apt
    assert packages == {"chromium", "chromium-driver", "redis-server"}

    assert ".venv/bin/pip install -r requirements-dev.txt" in test
    assert any(line.startswith(".venv/bin/pip install -q -r requirements-dev.txt") for line in ci)
    assert '.venv/bin/python -m pytest -m "not slow"' in test  # the fast tier
    assert ".venv/bin/python -m pytest" in test  # the whole suite...
    full = [line for line in ci if line.startswith(".venv/bin/python -m pytest")]
    assert len(full) == 1  # ...is what CI runs, with no marker filter
    assert "-m" not in shlex.split(full[0])[3:], full[0]

    site = [line for line in ci if "mkdocs build" in line]
    assert len(site) == 1 and "--strict" in site[0]
    assert ".venv/bin/mkdocs build --strict" in section_commands(README, "Documentation")
    # the site is built after the install and before the tests
    assert ci.index(site[0]) > ci.index("python3 -m venv .venv") and ci.index(site[0]) < ci.index(
        full[0]
    )


def test_readme_run_command_names_real_settings_and_files() -> None:
    (run,) = section_commands(README, "Run")
    words = shlex.split(run)
    env = dict(w.split("=", 1) for w in words if re.match(r"SIGHTING_[A-Z_]+=", w))
    assert set(env) == {"SIGHTING_WEIGHTS_DIR", "SIGHTING_DETECTOR", "SIGHTING_VERIFIER"}
    Settings(_env_file=None, **{k.removeprefix("SIGHTING_").lower(): v for k, v in env.items()})
    command = words[len(env) :]
    assert command == [".venv/bin/gunicorn", "-c", "gunicorn.conf.py"]
    assert (REPO_ROOT / "gunicorn.conf.py").is_file()


def test_getting_started_shows_the_readme_commands() -> None:
    page = (DOCS / "getting-started.md").read_text()
    for heading in ("Install", "Run", "Test"):
        assert section_commands(page, heading) == section_commands(README, heading), heading
    python = re.compile(r"```python\n(.*?)```", re.S)
    assert python.search(page).group(1) == python.search(README).group(1)


def test_readme_is_a_front_door() -> None:
    lines = README.splitlines()
    assert len(lines) <= 200
    first_screen = "\n".join(lines[:60])
    for heading in ("## Install", "## Run", "## Test"):
        assert heading in first_screen
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) == 5


def test_readme_links_and_images_exist() -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (REPO_ROOT / target).exists(), target
    config = (REPO_ROOT / "mkdocs.yml").read_text()
    nav_pages = set(re.findall(r":\s*([\w-]+\.md)\s*$", config, re.M))
    linked = {Path(t).name for t in re.findall(r"\]\(docs/([\w-]+\.md)", README)}
    assert linked <= nav_pages, linked - nav_pages


def test_readme_headline_figures_are_in_their_result_files() -> None:
    table = re.search(r"^## Headline figures\n(.*?)(?=^## )", README, re.S | re.M).group(1)
    rows = [r for r in table.splitlines() if r.startswith("| ") and "`" in r]
    assert len(rows) >= 5
    for row in rows:
        _, figure, source = (c.strip() for c in row.strip("|").split("|"))
        doc = load_results(DOCS / "benchmarks" / f"{source.strip('`')}.json")
        cells = " ".join(c for r in doc["rows"] for c in r)
        for number in re.findall(r"\d+(?:\.\d+)?", figure.replace(",", "")):
            assert number in cells.replace(",", ""), (figure, source)


def test_every_result_file_loads_and_renders() -> None:
    files = sorted((DOCS / "benchmarks").glob("*.json"))
    assert len(files) >= 17
    pages = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    for path in files:
        doc = load_results(path)
        assert doc["rows"] and doc["command"] and doc["machine"] and doc["commit"]
        text = to_markdown(doc)
        assert text.count("\n| ") >= len(doc["rows"]) and doc["command"] in text
        assert f"<!-- generated: benchmark {path.stem} -->" in pages, path.stem


def test_save_results_writes_what_the_site_reads(tmp_path: Path) -> None:
    path = save_results(
        tmp_path / "r.json",
        title="A table",
        columns=["a", "b|c"],
        rows=[[1, 2.5]],
        settings={"SIGHTING_THREADS": 1},
        command="python -m bench.x --save-json r.json",
    )
    doc = load_results(path)
    assert doc["rows"] == [["1", "2.5"]] and doc["settings"] == {"SIGHTING_THREADS": "1"}
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$", doc["date"])
    assert doc["commit"] != "" and doc["machine"]
    assert "| a | b\\|c |" in to_markdown(doc)  # a pipe in a cell does not split it
    with pytest.raises(BadInput, match="row 0 has 1 cells for 2 columns"):
        save_results(tmp_path / "bad.json", title="t", columns=["a", "b"], rows=[[1]], settings={})
    (tmp_path / "partial.json").write_text(json.dumps({"title": "t"}))
    with pytest.raises(BadInput, match="lacks command"):
        load_results(tmp_path / "partial.json")


def test_machine_save_json_records_the_model_set(tmp_path: Path) -> None:
    from bench.machine import describe, save_json

    settings = Settings(_env_file=None, detector="yolov5n", verifier="aliked_lightglue")
    doc = load_results(
        save_json(
            tmp_path / "s.json",
            settings,
            title="Speed",
            columns=["stage", "p50 ms"],
            rows=[["detect", 16.0]],
            settings={"images": "bus.jpg"},
        )
    )
    assert doc["machine"] == describe(settings)
    assert doc["settings"]["SIGHTING_DETECTOR"] == "yolov5n"
    assert doc["settings"]["SIGHTING_VERIFIER"] == "aliked_lightglue"
    assert doc["settings"]["images"] == "bus.jpg"


def test_settings_table_lists_every_setting_with_its_meaning() -> None:
    rows = hooks().settings_rows((REPO_ROOT / ".env.example").read_text())
    names = {name for _, name, _, _ in rows}
    fields = {f"SIGHTING_{f.upper()}" for f in Settings.model_fields}
    assert names == fields, names ^ fields
    assert all(meaning for _, _, _, meaning in rows), [r for r in rows if not r[3]]
    by_name = {name: (section, default) for section, name, default, _ in rows}
    assert by_name["SIGHTING_TOP_K"] == ("pipeline", "`5`")
    assert by_name["SIGHTING_S3_ENDPOINT_URL"][1].startswith("unset")


def test_contracts_page_lists_every_layer_and_contract() -> None:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    text = hooks().contracts_markdown(pyproject)
    for contract in pyproject["tool"]["importlinter"]["contracts"]:
        assert contract["name"] in text
        for layer in contract.get("layers", []):
            assert f"`{layer}`" in text


def test_architecture_layout_names_every_package() -> None:
    page = (DOCS / "architecture.md").read_text()
    layout = re.search(r"^## Layout\n(.*?)(?=^## )", page, re.S | re.M).group(1)
    listed = set(re.findall(r"^\| `([\w]+)/` \|", layout, re.M))
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = set(pyproject["tool"]["importlinter"]["root_packages"])
    assert packages <= listed, packages - listed


def test_the_offline_check_finds_assets_from_other_hosts(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text(
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto">'
        '<link rel="canonical" href="https://example.org/a/">'
        '<script src="../assets/bundle.js"></script><img src="//cdn.example.org/x.png">'
        '<a href="https://github.com/">a link a reader follows</a>'
    )
    (tmp_path / "b.html").write_text('<script src="assets/local.js"></script>')
    assert hooks().external_assets(tmp_path) == {
        "a/index.html": [
            "https://fonts.googleapis.com/css?family=Roboto",
            "//cdn.example.org/x.png",
        ]
    }


def test_nav_names_only_pages_that_exist() -> None:
    config = yaml.load((REPO_ROOT / "mkdocs.yml").read_text(), Loader=yaml.SafeLoader)

    def pages(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, list):
            for x in node:
                yield from pages(x)
        elif isinstance(node, dict):
            for x in node.values():
                yield from pages(x)

    nav = list(pages(config["nav"]))
    assert len(nav) == len(set(nav))
    for page in nav:
        assert (DOCS / page).is_file(), page
    assert config["theme"]["font"] is False  # nothing fetched from Google Fonts


@pytest.mark.slow
def test_api_page_renders_every_operation_of_the_services_document() -> None:
    h = hooks()
    spec = h.service_spec()
    text = h.openapi_markdown(spec)
    count = 0
    for path, item in spec["paths"].items():
        for method in h.METHODS:
            if method in item:
                assert f"`{method.upper()} {path}`" in text
                assert f"{{#op-{h._op_id(method, path, item[method])}}}" in text
                count += 1
    assert count >= 26
    for name in spec["components"]["schemas"]:
        assert f"### {name} {{#{h._anchor(name)}}}" in text
    for ref in re.findall(r"\]\(#(schema-[\w-]+)\)", text):  # every link has its target
        assert f"{{#{ref}}}" in text, ref


@pytest.mark.slow
def test_site_builds_offline_with_no_external_assets(tmp_path: Path) -> None:
    out = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(list(out.rglob("*.html"))) >= 15
    assert hooks().external_assets(out) == {}  # (the build's own check, again)
    api = (out / "api" / "index.html").read_text()
    assert "POST /v1/catalogs/{catalog_id}/detect" in api
    assert (out / "console-try.png").is_file()  # the README's images are the site's
    settings = (out / "deploying" / "index.html").read_text()
    assert "SIGHTING_MAX_QUEUE" in settings


def test_bench_load_saves_the_published_tables_columns(tmp_path: Path) -> None:
    import argparse

    from bench.load import parse_args, save_table

    args = parse_args(
        ["--clients", "3", "--duration", "5", "--save-json", str(tmp_path / "l.json")]
    )
    assert isinstance(args, argparse.Namespace) and args.save_json == tmp_path / "l.json"
    result = {
        "machine": "x86_64 x2 CPU (Linux)",
        "workers_seen": 2,
        "requests": 12,
        "requests_per_s": 2.4,
        "p50_ms": 1500,
        "p95_ms": 2250,
        "p99_ms": 2400,
        "errors": {"http_5xx": 0, "connection": 1, "timeout": 0, "other": 0},
        "top1_right": "10/12",
        "items_lost": [],
    }
    doc = load_results(save_table(args.save_json, result, args))
    published = load_results(DOCS / "benchmarks" / "load.json")
    assert doc["columns"] == published["columns"]
    assert doc["rows"] == [["12", "2.4", "1.5 / 2.2 / 2.4 s", "0 / 1 / 0", "10 / 12", "0"]]
    assert doc["settings"]["clients"] == "3" and doc["machine"] == result["machine"]
