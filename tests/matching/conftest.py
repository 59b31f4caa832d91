"""Fixtures of the matching tests: a Milvus Lite engine shared by the session."""

from __future__ import annotations

import pytest

from tests.milvus import lite_config


@pytest.fixture(scope="session")
def milvus_engine(tmp_path_factory):
    """One Milvus Lite database for the session; tests keep apart by catalog id."""
    from matching.milvus_index import MilvusEngine

    return MilvusEngine(lite_config(tmp_path_factory.mktemp("milvus")))
