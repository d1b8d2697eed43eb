from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.deploy.support import SHIPPED_ROUTES
from tests.support.gateway_process import GatewayProcess


@pytest.fixture(scope="session")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The real gateway serving a copy of the shipped routes.yaml on a free port (for probe commands)."""
    config = tmp_path_factory.mktemp("live") / "routes.yaml"
    shutil.copy(SHIPPED_ROUTES, config)
    with GatewayProcess(config) as gateway:
        yield gateway
