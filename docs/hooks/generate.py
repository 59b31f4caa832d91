"""MkDocs hooks: the parts of the site generated at build time from the project itself.

A page asks for a generated block with a marker on a line of its own:

- ``<!-- generated: openapi -->``: the HTTP API, from the service's own OpenAPI document
  (``api.create_app(...).spec``, the document ``/openapi.json`` serves).
- ``<!-- generated: settings -->``: every ``SIGHTING_*`` setting, from ``.env.example``.
- ``<!-- generated: contracts -->``: the import-linter contracts of ``pyproject.toml``.
- ``<!-- generated: benchmark NAME -->``: the result file ``docs/benchmarks/NAME.json``
  (`bench.results`) as a table with its command, machine, settings, date and commit.

An unknown marker, a missing result file, a result file that no page shows, or a built page
that loads a script, style, font or image from another host fails the build (``mkdocs build
--strict`` in ``.ci/run``).
"""

from __future__ import annotations

import re
import sys
import tempfile
import tomllib
from html.parser import HTMLParser
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "docs" / "benchmarks"
MARKER = re.compile(r"^<!--\s*generated:\s*([a-z-]+)(?:\s+([A-Za-z0-9_.-]+))?\s*-->\s*$", re.M)
METHODS = ("get", "post", "put", "patch", "delete")

_cache: dict[str, object] = {}
_shown: set[str] = set()


# ---- mkdocs events ------------------------------------------------------------------------


def on_pre_build(config, **kwargs) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # the project's packages (api, bench) import from here
    _shown.clear()


def on_page_markdown(markdown: str, page, config, files, **kwargs) -> str:
    def block(m: re.Match) -> str:
        kind, arg = m.group(1), m.group(2)
        try:
            return generate(kind, arg)
        except PluginError:
            raise
        except Exception as e:  # a generator's failure names the page and the marker
            raise PluginError(f"{page.file.src_path}: generating {kind} {arg or ''}: {e}") from e

    return MARKER.sub(block, markdown)


def on_post_build(config, **kwargs) -> None:
    fetched = external_assets(Path(config["site_dir"]))
    if fetched:
        page, urls = next(iter(fetched.items()))
        raise PluginError(
            f"{len(fetched)} pages load assets from other hosts (the site must work offline), "
            f"e.g. {page}: {', '.join(urls)}"
        )
    unshown = sorted(p.stem for p in BENCHMARKS.glob("*.json") if p.stem not in _shown)
    if unshown:
        raise PluginError(
            "result files no page shows (add <!-- generated: benchmark NAME --> to a page): "
            + ", ".join(unshown)
        )


def generate(kind: str, arg: str | None) -> str:
    """The Markdown of one marker."""
    if kind == "openapi":
        if "spec" not in _cache:
            _cache["spec"] = service_spec()
        return openapi_markdown(_cache["spec"])
    if kind == "settings":
        return settings_markdown((ROOT / ".env.example").read_text())
    if kind == "contracts":
        return contracts_markdown(tomllib.loads((ROOT / "pyproject.toml").read_text()))
    if kind == "benchmark" and arg:
        from bench.results import load_results, to_markdown

        path = BENCHMARKS / f"{arg}.json"
        if not path.is_file():
            raise PluginError(f"no result file {path.relative_to(ROOT)}")
        _shown.add(arg)
        return to_markdown(load_results(path))
    raise PluginError(f"unknown generated block: {kind} {arg or ''}")


# ---- the HTTP API -------------------------------------------------------------------------


class _NoModels:
    """Stands in for the models while the app is built only to read its OpenAPI document:
    the document depends on the routes and schemas, never on a model, and nothing is
    matched during the build (any use fails loudly)."""

    def __getattr__(self, name: str):
        raise RuntimeError(f"the docs build loads no model (Pipeline.{name} was asked for)")


def service_spec() -> dict:
    """The OpenAPI document of an app built as a worker builds it (local store in a temporary
    folder, API keys on, so the key requirement shows), without loading models."""
    from api import create_app
    from core.settings import Settings

    with tempfile.TemporaryDirectory() as store:
        settings = Settings(_env_file=None, data_dir=store, api_keys=["docs-build"])
        return create_app(settings, pipeline=_NoModels()).spec


def _anchor(name: str) -> str:
    return "schema-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _type(schema: dict) -> str:
    """A schema in a few words, with links to the named schemas."""
    if not schema:
        return "any"
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}](#{_anchor(name)})"
    for combo, word in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if combo in schema:
            return word.join(_type(s) for s in schema[combo])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array":
        text = f"array of {_type(schema.get('items', {}))}"
    elif kind == "object" and "additionalProperties" in schema and not schema.get("properties"):
        extra = schema["additionalProperties"]
        text = f"object of {_type(extra) if isinstance(extra, dict) else 'any'}"
    else:
        text = kind
    facts = []
    if "enum" in schema:
        facts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"]))
    for key, word in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
        ("minLength", "length >="),
        ("maxLength", "length <="),
        ("minItems", "items >="),
        ("maxItems", "items <="),
    ):
        if key in schema and not isinstance(schema[key], bool):
            facts.append(f"{word} {schema[key]}")
    for key in ("format", "contentEncoding", "contentMediaType"):
        if key in schema:
            facts.append(f"{key} `{schema[key]}`")
    if "pattern" in schema:
        facts.append(f"pattern `{schema['pattern']}`")
    if "default" in schema:
        facts.append(f"default `{schema['default']}`")
    if schema.get("nullable"):
        facts.append("nullable")
    return text + (f" ({'; '.join(facts)})" if facts else "")


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _description(text: str) -> str:
    return text.replace("``", "`").strip()


def openapi_markdown(spec: dict) -> str:
    """Every operation of the document by tag, then every schema; Markdown."""
    lines: list[str] = []
    info = spec.get("info", {})
    lines += [
        f"Generated from the OpenAPI {spec.get('openapi', '')} document of "
        f"{info.get('title', 'the service')} {info.get('version', '')} at build time "
        "(the same document the service serves at `/openapi.json` and browses at `/docs`).",
        "",
    ]
    if info.get("description"):
        lines += [_description(info["description"]), ""]
    for name, scheme in spec.get("components", {}).get("securitySchemes", {}).items():
        where = f"the `{scheme.get('name')}` {scheme.get('in')}" if "name" in scheme else ""
        lines += [f"**Security** `{name}`: {scheme.get('type')} in {where}.", ""]

    groups: dict[str, list[tuple[str, str, dict]]] = {}
    order = [t["name"] for t in spec.get("tags", [])]
    for path, item in spec.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["Other"])[0]
                groups.setdefault(tag, []).append((path, method, op | {"_shared": item}))
    tags = list(dict.fromkeys([t for t in order if t in groups] + sorted(groups)))

    lines += ["## Operations", ""]
    for tag in tags:
        lines += [f"| {tag} | |", "|---|---|"]
        for path, method, op in groups[tag]:
            lines.append(
                f"| [`{method.upper()} {path}`](#op-{_op_id(method, path, op)}) "
                f"| {_cell(op.get('summary', ''))} |"
            )
        lines.append("")
    for tag in tags:
        lines += [f"## {tag}", ""]
        for path, method, op in groups[tag]:
            lines += _operation(path, method, op)

    schemas = spec.get("components", {}).get("schemas", {})
    if schemas:
        lines += ["## Schemas", ""]
        for name, schema in schemas.items():
            lines += _schema(name, schema)
    return "\n".join(lines) + "\n"


def _op_id(method: str, path: str, op: dict) -> str:
    return op.get("operationId") or re.sub(r"[^A-Za-z0-9]+", "-", f"{method}{path}").strip("-")


def _operation(path: str, method: str, op: dict) -> list[str]:
    lines = [f"### `{method.upper()} {path}` {{#op-{_op_id(method, path, op)}}}", ""]
    if op.get("summary"):
        lines += [f"**{op['summary'].strip()}**", ""]
    if op.get("description"):
        lines += [_description(op["description"]), ""]
    if op.get("security"):
        names = ", ".join(f"`{n}`" for req in op["security"] for n in req)
        lines += [f"Needs: {names}.", ""]
    params = op["_shared"].get("parameters", []) + op.get("parameters", [])
    if params:
        lines += ["| parameter | in | type | required | description |", "|---|---|---|---|---|"]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type(p.get('schema', {})))} "
                f"| {'yes' if p.get('required') else 'no'} "
                f"| {_cell(_description(p.get('description', '')))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        required = "required" if body.get("required") else "optional"
        lines += [f"Request body ({required}):", ""]
        for media, content in body.get("content", {}).items():
            lines.append(f"- `{media}`: {_type(content.get('schema', {}))}")
        lines.append("")
    lines += ["| status | meaning | body |", "|---|---|---|"]
    for status, answer in sorted(op.get("responses", {}).items()):
        content = answer.get("content", {})
        body_text = "; ".join(f"`{m}` {_type(c.get('schema', {}))}" for m, c in content.items())
        headers = ", ".join(f"`{h}`" for h in answer.get("headers", {}))
        if headers:
            body_text += f" (headers {headers})"
        lines.append(
            f"| {status} | {_cell(_description(answer.get('description', '')))} "
            f"| {_cell(body_text) or '-'} |"
        )
    lines.append("")
    return lines


def _schema(name: str, schema: dict) -> list[str]:
    lines = [f"### {name} {{#{_anchor(name)}}}", ""]
    if schema.get("description"):
        lines += [_description(schema["description"]), ""]
    props = schema.get("properties")
    if not props:
        return lines + [f"{_type(schema)}", ""]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | description |", "|---|---|---|---|"]
    for field, sub in props.items():
        lines.append(
            f"| `{field}` | {_cell(_type(sub))} | {'yes' if field in required else 'no'} "
            f"| {_cell(_description(sub.get('description', '')))} |"
        )
    if schema.get("additionalProperties") is False:
        lines += ["", "No other fields."]
    return lines + [""]


# ---- settings -----------------------------------------------------------------------------

SECTION = re.compile(r"^#\s*-{2,}\s*(.+?)\s*-*\s*$")
VARIABLE = re.compile(r"^(#\s*)?(SIGHTING_[A-Z0-9_]+)=(.*)$")


def settings_rows(text: str) -> list[tuple[str, str, str, str]]:
    """``(section, name, default, meaning)`` of every setting in ``.env.example``; a variable
    that is commented out has no default (its example value is shown as such)."""
    rows = []
    section, comment, meaning = None, [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if m := SECTION.match(line):
            section, comment, meaning = m.group(1), [], ""
            continue
        if section is None:
            continue  # the file's own introduction
        if m := VARIABLE.match(line):
            if comment:
                meaning, comment = " ".join(comment), []
            value = m.group(3)
            if m.group(1):
                default = f"unset (e.g. `{value}`)"
            else:
                default = f"`{value}`" if value else "empty"
            rows.append((section, m.group(2), default, meaning))
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        elif not line:
            comment, meaning = [], ""
    return rows


def settings_markdown(text: str) -> str:
    lines: list[str] = []
    section = None
    for sec, name, default, meaning in settings_rows(text):
        if sec != section:
            section = sec
            lines += ["", f"### {sec[0].upper() + sec[1:]}", "", "| setting | default | meaning |"]
            lines.append("|---|---|---|")
        lines.append(f"| `{name}` | {_cell(default)} | {_cell(meaning)} |")
    return "\n".join(lines).lstrip() + "\n"


# ---- import contracts ---------------------------------------------------------------------


def contracts_markdown(pyproject: dict) -> str:
    """The import-linter contracts as `lint-imports` checks them."""
    linter = pyproject["tool"]["importlinter"]
    lines = [
        "Root packages: " + ", ".join(f"`{p}`" for p in linter["root_packages"]) + ".",
        "",
    ]
    for contract in linter.get("contracts", []):
        lines += [f"**{contract['name']}** ({contract['type']})", ""]
        if contract["type"] == "layers":
            lines.append("Top to bottom (`a | b`: side by side, neither imports the other):")
            lines.append("")
            lines += [f"{n}. `{layer}`" for n, layer in enumerate(contract["layers"], 1)]
        elif contract["type"] == "forbidden":
            sources = ", ".join(f"`{m}`" for m in contract["source_modules"])
            banned = ", ".join(f"`{m}`" for m in contract["forbidden_modules"])
            lines.append(f"{sources} may not import {banned}.")
        elif contract["type"] == "independence":
            modules = ", ".join(f"`{m}`" for m in contract["modules"])
            lines.append(f"{modules}: none imports another.")
        else:
            rest = {k: v for k, v in contract.items() if k not in ("name", "type")}
            lines += [f"- {k}: {v}" for k, v in rest.items()]
        lines.append("")
    return "\n".join(lines)


# ---- offline check ------------------------------------------------------------------------


class _Assets(HTMLParser):
    """Every URL a page loads by itself (scripts, styles, images, frames), not the links a
    reader follows."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "video", "audio", "embed") and a.get("src"):
            self.urls.append(a["src"])
        if tag == "link" and a.get("href") and a.get("rel") != "canonical":
            self.urls.append(a["href"])


def external_assets(site: Path) -> dict[str, list[str]]:
    """Page -> the URLs on other hosts that it loads (none on an offline site)."""
    found = {}
    for page in sorted(site.rglob("*.html")):
        parser = _Assets()
        parser.feed(page.read_text(errors="replace"))
        urls = [u for u in parser.urls if re.match(r"(https?:)?//", u)]
        if urls:
            found[str(page.relative_to(site))] = urls
    return found
