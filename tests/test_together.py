"""Writes to several sockets in one system call (linking/campaigns/together.py)."""

import socket

import pytest

from linking.campaigns import together


@pytest.fixture
def pairs():
    made = [socket.socketpair() for _ in range(3)]
    for ours, _theirs in made:
        ours.setblocking(False)
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


@pytest.mark.parametrize("at_once", [True, False])
def test_each_socket_gets_its_bytes_and_each_write_its_result(pairs, at_once):
    writes = [(ours.fileno(), f"write {n}\r\n".encode()) for n, (ours, _) in enumerate(pairs)]

    results = together.write_all(writes, at_once=at_once)

    assert results == [len(data) for _fd, data in writes]
    assert [theirs.recv(100) for _ours, theirs in pairs] == [data for _fd, data in writes]


@pytest.mark.parametrize("at_once", [True, False])
def test_a_closed_peer_fails_its_write_alone(pairs, at_once):
    pairs[1][1].close()

    results = together.write_all(
        [(ours.fileno(), b".\r\n") for ours, _theirs in pairs], at_once=at_once
    )

    assert results[0] == results[2] == 3
    assert isinstance(results[1], BrokenPipeError)
    assert pairs[2][1].recv(10) == b".\r\n"


def test_io_uring_is_there_on_this_machine():
    # The exactly-once tests of campaign sending rely on it (docs/operations.md).
    assert together.available()


def test_many_rounds_reuse_one_ring(pairs):
    (ours, theirs), *_ = pairs
    for number in range(200):  # more rounds than the ring has entries
        data = b"%d," % number
        assert together.write_all([(ours.fileno(), data)], at_once=True) == [len(data)]
        assert theirs.recv(100) == data
