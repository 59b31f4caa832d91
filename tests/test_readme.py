"""The README's front door works as written: its Python example runs and prints a match."""

from __future__ import annotations

import contextlib
import io
import os
import re

import pytest

from core.settings import REPO_ROOT


@pytest.mark.slow  # the real models and the 70-image grocery catalog
def test_readme_python_example_runs() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)  # the README's paths are relative to the checkout
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    printed = out.getvalue()
    assert "Arla-Standard-Milk" in printed, printed
