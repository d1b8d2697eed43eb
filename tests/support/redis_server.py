"""A throwaway redis-server on a free loopback port, when the machine has one (.ci/run installs it)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.servers import closed_port

REDIS_SERVER = shutil.which("redis-server")


@contextmanager
def redis_server() -> Iterator[str]:
    """Yields redis://127.0.0.1:PORT/0 once the server accepts connections."""
    assert REDIS_SERVER is not None
    port = closed_port()
    with tempfile.TemporaryDirectory() as workdir:
        process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                workdir,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:  # the server says when it is ready
                if b"Ready to accept connections" in line:
                    break
            else:
                raise RuntimeError("redis-server exited before it was ready")
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                pass
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()
