from collections.abc import Iterator

import pytest

from tests.conftest import free_port
from tests.kube.emulator import EmulatorServer


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    server = EmulatorServer(free_port()).start()
    yield server
    server.stop()
