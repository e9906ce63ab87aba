"""Suite-wide guards: no test touches the user's warehouse or the internet."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest
from hypothesis import settings

# CI draws the same examples on every run (derandomized), so a submission's CI result does not
# depend on luck; while developing, hypothesis explores new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname other than localhost would need DNS: that is the internet


def _guarded(real):
    def connect(self, address):
        if not _is_local(address):
            raise OSError(
                f"test tried to reach the network: {address!r} (only 127.0.0.1 is allowed)"
            )
        return real(self, address)

    return connect


@pytest.fixture(autouse=True)
def _no_network_and_private_db(monkeypatch, tmp_path_factory):
    monkeypatch.setattr(socket.socket, "connect", _guarded(_real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded(_real_connect_ex))
    # Any code path that opens "the default warehouse" gets a throwaway file, never the user's.
    monkeypatch.setenv("INFERCOST_DB", str(tmp_path_factory.mktemp("db") / "infercost.duckdb"))
    for var in ("INFERCOST_GCP_API_KEY", "GOOGLE_API_KEY", "RUNPOD_API_KEY"):
        monkeypatch.delenv(var, raising=False)
