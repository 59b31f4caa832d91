"""Settings: read from the environment, and every field documented in `.env.example`."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from core.settings import REPO_ROOT, Settings


def test_env_example_lists_every_setting() -> None:
    documented = set(
        re.findall(r"^#?\s*SIGHTING_([A-Z0-9_]+)=", (REPO_ROOT / ".env.example").read_text(), re.M)
    )
    fields = {name.upper() for name in Settings.model_fields}
    assert fields == documented, f"missing: {fields - documented}, unknown: {documented - fields}"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGHTING_DEVICE", "cpu")
    monkeypatch.setenv("SIGHTING_API_KEYS", "alpha, beta,,")
    monkeypatch.setenv("SIGHTING_EMBEDDER", "mobilenet_v2")
    s = Settings(_env_file=None)
    assert (s.device, s.embedder, s.api_keys) == ("cpu", "mobilenet_v2", ["alpha", "beta"])
    assert s.auth_enabled


def test_bad_values_fail_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGHTING_DEVICE", "tpu")
    with pytest.raises(ValidationError, match="device"):
        Settings(_env_file=None)
