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
waiting, which write_all checks first).

Without io_uring (another kernel, or a seccomp profile that forbids it) write_all
writes one after another in the order given; available() tells which.
"""

import ctypes
import errno
import mmap
import os
import select
import socket
import struct
import threading
from collections.abc import Sequence

_SYS_IO_URING_SETUP = 425  # the same number on x86-64 and arm64
_SYS_IO_URING_ENTER = 426
_OP_SEND = 26
_ENTER_GETEVENTS = 1
_SETUP_SUBMIT_ALL = 1 << 7  # go on past a write that fails (Linux 5.18)
_FEAT_SINGLE_MMAP = 1
_OFF_SQ_RING = 0
_OFF_CQ_RING = 0x8000000
_OFF_SQES = 0x10000000
_SQE_SIZE = 64
_CQE_SIZE = 16
_ENTRIES = 64  # the most writes one call can take
_PARAMS = struct.Struct("=10I10I10I")  # io_uring_params: 10 words, sq_off, cq_off
_SQE = struct.Struct("=BBHiQQIIQHHiQQ")
_CQE = struct.Struct("=QiI")
_U32 = struct.Struct("=I")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _NotSubmitted(OSError):
    """io_uring_enter refused the writes before taking any of them."""


class _Ring:
    """One io_uring instance: its submission and completion rings, mapped."""

    def __init__(self) -> None:
        for flags in (_SETUP_SUBMIT_ALL, 0):
            params = ctypes.create_string_buffer(_PARAMS.pack(0, 0, flags, *[0] * 27), _PARAMS.size)
            fd = _libc.syscall(_SYS_IO_URING_SETUP, ctypes.c_uint(_ENTRIES), params)
            if fd >= 0 or ctypes.get_errno() != errno.EINVAL:
                break
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd = fd
        words = _PARAMS.unpack(params.raw)
        sq_entries, cq_entries, _flags, _cpu, _idle, features = words[:6]
        (sq_head, sq_tail, sq_mask, _entries, _sq_flags, _dropped, sq_array) = words[10:17]
        (cq_head, cq_tail, cq_mask, _entries, _overflow, cqes) = words[20:26]
        if not features & _FEAT_SINGLE_MMAP:
            os.close(fd)
            raise OSError(errno.ENOSYS, "io_uring without a single ring mapping")
        size = max(sq_array + sq_entries * 4, cqes + cq_entries * _CQE_SIZE)
        flags = mmap.MAP_SHARED | mmap.MAP_POPULATE
        self.rings = mmap.mmap(fd, size, flags=flags, offset=_OFF_SQ_RING)
        self.sqes = mmap.mmap(fd, sq_entries * _SQE_SIZE, flags=flags, offset=_OFF_SQES)
        self.sq = (sq_head, sq_tail, sq_mask, sq_array)
        self.cq = (cq_head, cq_tail, cq_mask, cqes)

    def _word(self, offset: int) -> int:
        return _U32.unpack_from(self.rings, offset)[0]

    def send_all(self, writes: Sequence[tuple[int, bytes]]) -> list[int]:
        """Queue one send per (fd, data) and submit them in one io_uring_enter; each
        one's result: bytes written, or minus an errno."""
        sq_head, sq_tail, sq_mask, sq_array = self.sq
        buffers = [ctypes.create_string_buffer(data, len(data)) for _fd, data in writes]
        tail = self._word(sq_tail)
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
        cq_head, cq_tail, cq_mask, cqes = self.cq
        head = self._word(cq_head)
        while None in results:
            unsubmitted = (end - self._word(sq_head)) & 0xFFFFFFFF
            if head == self._word(cq_tail) or unsubmitted:
                waiting = results.count(None)
                done = _libc.syscall(
                    _SYS_IO_URING_ENTER, self.fd, unsubmitted, waiting, _ENTER_GETEVENTS, None, 0
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


def _ring() -> _Ring | None:
    """This thread's ring (a forked child makes its own), or None without io_uring."""
    pid = os.getpid()
    if getattr(_local, "pid", None) != pid:
        _local.pid = pid
        try:
            _local.ring = _Ring()
        except OSError:
            _local.ring = None
    return _local.ring


def available() -> bool:
    """Whether write_all can hand its writes over in one system call here."""
    return _ring() is not None


def write_all(writes: Sequence[tuple[int, bytes]], *, at_once: bool) -> list[int | OSError]:
    """Write each (fd, data) of `writes`, in order: the bytes written or the error of
    each. at_once: in one system call, where available; each socket is first waited
    on until it has room, so that no write has to wait inside that call."""
    if not writes:
        return []
    ring = _ring() if at_once and len(writes) <= _ENTRIES else None
    if ring is not None:
        _wait_writable([fd for fd, _data in writes])
        try:
            results = ring.send_all(writes)
        except _NotSubmitted:
            pass  # nothing was written: one after another, then
        else:
            return [
                result if result >= 0 else OSError(-result, os.strerror(-result))
                for result in results
            ]
    return [_write(fd, data) for fd, data in writes]


def _write(fd: int, data: bytes) -> int | OSError:
    try:
        return os.write(fd, data)
    except OSError as exc:
        return exc


def _wait_writable(fds: list[int], seconds: float = 10.0) -> None:
    poller = select.poll()
    waiting = set(fds)
    for fd in waiting:
        poller.register(fd, select.POLLOUT)
    while waiting:
        events = poller.poll(seconds * 1000)
        if not events:
            return  # let the writes report their own errors
        for fd, _event in events:
            waiting.discard(fd)
            poller.unregister(fd)
