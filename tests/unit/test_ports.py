"""Service ports: below the ephemeral range, one slice per pytest-xdist worker (no two
workers can draw the same port, whatever their timing)."""

from __future__ import annotations

import socket
from pathlib import Path

from streams.services.base import PORT_RANGE, free_port, port_is_free, port_slice


def ephemeral_range() -> tuple[int, int]:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return int(low), int(high)


def test_the_range_is_below_the_kernels_ephemeral_ports() -> None:
    assert PORT_RANGE[1] <= ephemeral_range()[0]


def test_xdist_workers_get_disjoint_slices_covering_the_range() -> None:
    slices = [
        port_slice({"PYTEST_XDIST_WORKER": f"gw{i}", "PYTEST_XDIST_WORKER_COUNT": "6"}) for i in range(6)
    ]
    assert all(low < high for low, high in slices)
    assert all(a[1] <= b[0] for a, b in zip(slices, slices[1:], strict=False))  # ordered, disjoint
    assert slices[0][0] == PORT_RANGE[0] and slices[-1][1] <= PORT_RANGE[1]
    assert port_slice({}) == PORT_RANGE  # not under xdist: the whole range
    assert port_slice({"PYTEST_XDIST_WORKER": "master", "PYTEST_XDIST_WORKER_COUNT": "6"}) == PORT_RANGE


def test_free_port_is_in_this_processes_slice_and_bindable() -> None:
    low, high = port_slice()
    ports = {free_port() for _ in range(20)}
    assert len(ports) == 20  # one process never hands out a port twice
    assert all(low <= p < high for p in ports)
    port = ports.pop()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free(port)
