"""Small writes to several sockets handed to the kernel in one system call, so a
process killed at any moment has handed over all of them or none.

A campaign sender ends a batch with two kinds of write: the COMMIT that marks the
batch "sent" (to PostgreSQL) and the final "." of each email (to the mail server).
Written one after another, a SIGKILL between them leaves a commit without its "."s,
emails marked sent that the server never got. A signal acts only when a process
returns from a system call, and the kernel delivers what a dead process had
written to a socket, so writes made inside one system call stand or fall together.
Linux's io_uring takes them in one io_uring_enter: the writes are queued on the
submission ring and the kernel issues each in turn before the call returns (small
writes to sockets with room in their send buffers complete at once, without
waiting, which write_at_once makes sure of first).

Without io_uring (another kernel, one without its send operation, or a seccomp
profile that forbids it) write_at_once declines and the caller writes one after
another (write_each); available() tells which.
"""

import contextlib
import ctypes
import errno
import mmap
import os
import select
import socket
import struct
import threading
import time
import weakref
from collections.abc import Sequence

_SYS_IO_URING_SETUP = 425  # the same number on x86-64 and arm64
_SYS_IO_URING_ENTER = 426
_OP_SEND = 26  # Linux 5.6
_ENTER_GETEVENTS = 1
_SETUP_SUBMIT_ALL = 1 << 7  # go on past a write that fails (Linux 5.18)
_FEAT_SINGLE_MMAP = 1
_OFF_SQ_RING = 0
_OFF_CQ_RING = 0x8000000
_OFF_SQES = 0x10000000
_SQE_SIZE = 64
_CQE_SIZE = 16
_MIN_ENTRIES = 64
_MAX_ENTRIES = 4096  # the most writes one call takes; more are written one by one
_PARAMS = struct.Struct("=10I10I10I")  # io_uring_params: 10 words, sq_off, cq_off
_SQE = struct.Struct("=BBHiQQIIQHHiQQ")
_CQE = struct.Struct("=QiI")
_U32 = struct.Struct("=I")
_ROOM_SECONDS = 10.0  # how long write_at_once waits for room on every socket

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

Result = int | OSError


class _NotSubmitted(OSError):
    """io_uring_enter refused the writes before taking any of them."""


class _Unclean(_NotSubmitted):
    """The ring holds entries of an earlier call that did not finish: not used."""


# Every ring of this process, so that a forked child closes its copies at once,
# before anything in it can reuse their descriptors' numbers.
_rings: "weakref.WeakSet[_Ring]" = weakref.WeakSet()


class _Ring:
    """One io_uring instance: its submission and completion rings, mapped."""

    def __init__(self, entries: int) -> None:
        for flags in (_SETUP_SUBMIT_ALL, 0):
            params = ctypes.create_string_buffer(_PARAMS.pack(0, 0, flags, *[0] * 27), _PARAMS.size)
            fd = _libc.syscall(ctypes.c_long(_SYS_IO_URING_SETUP), ctypes.c_uint(entries), params)
            if fd >= 0 or ctypes.get_errno() != errno.EINVAL:
                break
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd
        # Closed when the ring is dropped: at a thread's end, or in a forked child
        # (its copy of the parent's ring).
        self._closer = weakref.finalize(self, os.close, fd)
        _rings.add(self)
        words = _PARAMS.unpack(params.raw)
        sq_entries, cq_entries, _flags, _cpu, _idle, features = words[:6]
        (sq_head, sq_tail, sq_mask, _entries, _sq_flags, _dropped, sq_array) = words[10:17]
        (cq_head, cq_tail, cq_mask, _entries, _overflow, cqes) = words[20:26]
        if not features & _FEAT_SINGLE_MMAP:
            self.close()
            raise OSError(errno.ENOSYS, "io_uring without a single ring mapping")
        self.entries = sq_entries
        size = max(sq_array + sq_entries * 4, cqes + cq_entries * _CQE_SIZE)
        flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
        try:
            self.rings = mmap.mmap(fd, size, flags=flags, offset=_OFF_SQ_RING)
            self.sqes = mmap.mmap(fd, sq_entries * _SQE_SIZE, flags=flags, offset=_OFF_SQES)
        except OSError:
            self.close()
            raise
        self.sq = (sq_head, sq_tail, sq_mask, sq_array)
        self.cq = (cq_head, cq_tail, cq_mask, cqes)
        self._probe()

    def close(self) -> None:
        self._closer()

    def _probe(self) -> None:
        """Send one byte through a socket pair: a kernel with io_uring but without
        its send operation (before 5.6) fails each send, and is not used."""
        ours, theirs = socket.socketpair()
        try:
            results = self.send_all([(ours.fileno(), b"?")])
            if results != [1] or theirs.recv(1) != b"?":
                raise OSError(errno.ENOSYS, f"io_uring cannot send here: {results}")
        except BaseException:
            self.close()
            raise
        finally:
            ours.close()
            theirs.close()

    def _word(self, offset: int) -> int:
        return _U32.unpack_from(self.rings, offset)[0]

    def send_all(self, writes: Sequence[tuple[int, bytes]]) -> list[int]:
        """Queue one send per (fd, data) and submit them in one io_uring_enter; each
        one's result: bytes written, or minus an errno."""
        sq_head, sq_tail, sq_mask, sq_array = self.sq
        cq_head, cq_tail, cq_mask, cqes = self.cq
        tail = self._word(sq_tail)
        head = self._word(cq_head)
        if self._word(sq_head) != tail or self._word(cq_tail) != head:
            raise _Unclean(errno.EBUSY, "io_uring ring not empty")
        buffers = [ctypes.create_string_buffer(data, len(data)) for _fd, data in writes]
        for number, ((fd, data), buffer) in enumerate(zip(writes, buffers, strict=True)):
            index = (tail + number) & self._word(sq_mask)
            _SQE.pack_into(
                self.sqes, index * _SQE_SIZE,
                _OP_SEND, 0, 0, fd, 0, ctypes.addressof(buffer), len(data),
                socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL, number, 0, 0, 0, 0, 0,
            )  # fmt: skip
            _U32.pack_into(self.rings, sq_array + index * 4, index)
        end = (tail + len(writes)) & 0xFFFFFFFF
        _U32.pack_into(self.rings, sq_tail, end)
        # One call submits every write (and waits for them); calls after it only
        # finish a submission or wait that a signal cut short.
        results: list[int | None] = [None] * len(writes)
        while None in results:
            unsubmitted = (end - self._word(sq_head)) & 0xFFFFFFFF
            if head == self._word(cq_tail) or unsubmitted:
                done = _libc.syscall(
                    ctypes.c_long(_SYS_IO_URING_ENTER),
                    ctypes.c_uint(self.fd),
                    ctypes.c_uint(unsubmitted),
                    ctypes.c_uint(results.count(None)),
                    ctypes.c_uint(_ENTER_GETEVENTS),
                    None,
                    ctypes.c_size_t(0),
                )
                if done < 0 and ctypes.get_errno() != errno.EINTR:
                    if unsubmitted == len(writes):
                        # Refused before taking any: withdraw them.
                        _U32.pack_into(self.rings, sq_tail, tail)
                        raise _NotSubmitted(ctypes.get_errno())
                    code = ctypes.get_errno()
                    raise OSError(code, os.strerror(code))
                continue
            number, result, _flags = _CQE.unpack_from(
                self.rings, cqes + (head & self._word(cq_mask)) * _CQE_SIZE
            )
            results[number] = result
            head = (head + 1) & 0xFFFFFFFF
            _U32.pack_into(self.rings, cq_head, head)
        del buffers  # kept alive until every send completed
        return results


_local = threading.local()


def _ring(writes: int = 1) -> _Ring | None:
    """This thread's ring, with room for `writes` (a forked child makes its own), or
    None: no usable io_uring here, or no bigger ring to be had for now."""
    size = max(_MIN_ENTRIES, 1 << (writes - 1).bit_length())
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid, _local.ring = os.getpid(), None
        with contextlib.suppress(OSError):  # none here: write_at_once declines
            _local.ring = _Ring(size)
        return _local.ring
    ring = _local.ring
    if ring is None or ring.entries >= writes:
        return ring
    try:
        bigger = _Ring(size)
    except OSError:
        return None  # this call declines; the ring it has stays for smaller ones
    ring.close()
    _local.ring = bigger
    return bigger


def _close_inherited() -> None:
    for ring in list(_rings):
        ring.close()


os.register_at_fork(after_in_child=_close_inherited)


def _drop_ring() -> None:
    """After a call that did not finish: the ring's state is not known, so a new one."""
    ring = getattr(_local, "ring", None)
    _local.pid, _local.ring = None, None
    if ring is not None:
        ring.close()


def available() -> bool:
    """Whether write_at_once can hand writes over in one system call here."""
    return _ring() is not None


def write_at_once(writes: Sequence[tuple[int, bytes]]) -> list[Result] | None:
    """Write each (fd, data) of `writes` in one system call: the bytes written or the
    error of each. First waits until every socket has room, so that no write has to
    wait inside that call. None, having written nothing, where that cannot be done:
    no usable io_uring, more writes than a call takes, a socket without room after
    _ROOM_SECONDS, or the call refused."""
    if not writes or len(writes) > _MAX_ENTRIES:
        return None
    ring = _ring(len(writes))
    if ring is None or not _wait_writable([fd for fd, _data in writes]):
        return None
    try:
        results = ring.send_all(writes)
    except _Unclean:
        _drop_ring()
        return None
    except _NotSubmitted:
        return None
    except BaseException:
        _drop_ring()
        raise
    return [result if result >= 0 else OSError(-result, os.strerror(-result)) for result in results]


def write_each(writes: Sequence[tuple[int, bytes]]) -> list[Result]:
    """Write each (fd, data) of `writes` in turn, without waiting: the bytes written
    or the error of each (BlockingIOError for a socket without room)."""
    return [_write(fd, data) for fd, data in writes]


def _write(fd: int, data: bytes) -> Result:
    try:
        return os.write(fd, data)
    except OSError as exc:
        return exc


def _wait_writable(fds: list[int]) -> bool:
    """Whether every fd has room to write (or an error to report) within _ROOM_SECONDS."""
    poller = select.poll()
    waiting = set(fds)
    for fd in waiting:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + _ROOM_SECONDS
    while waiting:
        left = deadline - time.monotonic()
        events = poller.poll(max(0.0, left) * 1000)
        if not events:
            return False
        for fd, _event in events:
            waiting.discard(fd)
            poller.unregister(fd)
    return True
