"""Fixtures of the camera-trap tests: real job consumers (shared with tests/jobs)."""

from tests.jobs.conftest import consumers  # noqa: F401 - the fixture, for the batch-job tests
