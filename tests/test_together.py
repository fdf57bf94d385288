"""Writes to several sockets in one system call (linking/campaigns/together.py)."""

import os
import socket
import subprocess
import sys

import pytest

from linking.campaigns import together


def _pairs(count: int) -> list[tuple[socket.socket, socket.socket]]:
    made = [socket.socketpair() for _ in range(count)]
    for ours, _theirs in made:
        ours.setblocking(False)
    return made


@pytest.fixture
def pairs():
    made = _pairs(3)
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


WRITERS = {"at once": together.write_at_once, "each": together.write_each}


@pytest.mark.parametrize("how", WRITERS)
def test_each_socket_gets_its_bytes_and_each_write_its_result(pairs, how):
    writes = [(ours.fileno(), f"write {n}\r\n".encode()) for n, (ours, _) in enumerate(pairs)]

    results = WRITERS[how](writes)

    assert results == [len(data) for _fd, data in writes]
    assert [theirs.recv(100) for _ours, theirs in pairs] == [data for _fd, data in writes]


@pytest.mark.parametrize("how", WRITERS)
def test_a_closed_peer_fails_its_write_alone(pairs, how):
    pairs[1][1].close()

    results = WRITERS[how]([(ours.fileno(), b".\r\n") for ours, _theirs in pairs])

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
        assert together.write_at_once([(ours.fileno(), data)]) == [len(data)]
        assert theirs.recv(100) == data


def test_more_sockets_than_a_first_ring_holds_still_go_in_one_call():
    made = _pairs(100)
    try:
        results = together.write_at_once(
            [(ours.fileno(), b"%d" % n) for n, (ours, _) in enumerate(made)]
        )

        assert results == [len(b"%d" % n) for n in range(100)]
        assert [theirs.recv(10) for _ours, theirs in made] == [b"%d" % n for n in range(100)]
    finally:
        for ours, theirs in made:
            ours.close()
            theirs.close()


def test_a_socket_without_room_keeps_every_write_back(pairs, monkeypatch):
    # A write that would have to wait has no place in the one call: none is made, and
    # the caller writes in its own order.
    monkeypatch.setattr(together, "_ROOM_SECONDS", 0.05)
    (full, _), (other, other_peer), _ = pairs
    while True:
        try:
            full.send(b"x" * 65536)
        except BlockingIOError:
            break

    assert together.write_at_once([(full.fileno(), b"C"), (other.fileno(), b".")]) is None

    other_peer.setblocking(False)
    with pytest.raises(BlockingIOError):
        other_peer.recv(10)


def test_a_ring_left_unfinished_is_not_used_again(pairs):
    # A call cut short (an exception between queueing and reaping) leaves entries on
    # the ring; the next call must neither read their results nor send them.
    (ours, theirs), *_ = pairs
    ring = together._ring()
    sq_tail = ring.sq[1]
    together._U32.pack_into(ring.rings, sq_tail, ring._word(sq_tail) + 1)  # a stray entry

    assert together.write_at_once([(ours.fileno(), b"a")]) is None  # nothing written

    assert together.write_at_once([(ours.fileno(), b"b")]) == [1]  # on a new ring
    assert together._ring() is not ring
    assert theirs.recv(10) == b"b"


def test_a_forked_child_closes_its_copy_of_the_ring_at_once():
    # Before the child does anything else: a descriptor number it frees and reuses
    # must never be closed later as if it were still the ring.
    ring = together._ring()
    assert ring is not None
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.fstat(ring.fd)
            os.write(writing, b"open")
        except OSError:
            os.write(writing, b"closed")
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(reading, 10) == b"closed"
    os.close(reading)
    os.close(writing)
    os.fstat(ring.fd)  # the parent's ring is untouched


GROW_FAILS = """
import os, resource, socket
from linking.campaigns import together
ours, theirs = socket.socketpair()
assert together.write_at_once([(ours.fileno(), b"a")]) == [1]
resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
held = []
try:
    while True:
        held.append(os.dup(0))
except OSError:
    pass
print(together.write_at_once([(ours.fileno(), b"b")] * 100))
print(together.write_at_once([(ours.fileno(), b"c")]))
print(theirs.recv(10))
"""


def test_a_bigger_ring_not_to_be_had_keeps_the_one_there_is():
    # No descriptor left for a ring of 128: that call declines, and the ring of 64
    # goes on taking smaller calls.
    done = subprocess.run(
        [sys.executable, "-c", GROW_FAILS], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "[1]", "b'ac'"]
