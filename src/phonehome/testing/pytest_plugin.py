"""pytest fixtures for telemetry tests, registered through the ``pytest11`` entry point."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from phonehome.testing import AzureIngestion, OTLPReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OTLPReceiver]:
    """A capture OTLP/HTTP receiver on 127.0.0.1, stopped after the test."""
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def azure_ingestion() -> Iterator[AzureIngestion]:
    """An Azure Monitor ingestion stub on 127.0.0.1, stopped after the test."""
    with AzureIngestion() as ingestion:
        yield ingestion


@pytest.fixture(autouse=True)
def _phonehome_undeclared_is_an_error() -> Iterator[None]:
    """In tests, recording a field the telemetry schema does not declare raises
    ``phonehome.UndeclaredError`` (in production it is dropped and counted)."""
    from phonehome._core import diagnostics as _diagnostics

    _diagnostics.set_strict_schema(True)
    yield
    _diagnostics.set_strict_schema(False)
