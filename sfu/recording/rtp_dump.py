"""RTP dump files: what the recorder writes while a room is recorded.

One append-only file per recorded track (``<producer_id>.rtpd``)::

    b"PLRTPD01"  u32 header length (little endian)  JSON header
    record*      u8 type, u16 length, f64 arrival (seconds, wall clock), payload

Record types: 1 = an RTP packet exactly as the SFU received it (SRTP
decrypted, possibly RTX), 2 = the publisher's last RTCP sender report
(u64 NTP timestamp, u32 RTP timestamp), 3 = a JSON note.

The header is written when the file is created; records are
appended by the recorder's flush timer. A process killed mid-write leaves a
truncated last record at most, which ``read_dump`` ignores: everything
before it is kept. Nothing here imports the application.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"PLRTPD01"
SUFFIX = ".rtpd"
REC_RTP = 1
REC_SR = 2
REC_NOTE = 3
RECORD = struct.Struct("<BHd")
_SR = struct.Struct("<QI")
_U32 = struct.Struct("<I")
MAX_HEADER = 1 << 20


class DumpError(Exception):
    """A file that is not an RTP dump (or its header is unreadable)."""


@dataclass
class DumpFile:
    """One track's dump read back: header plus records in file order."""

    path: Path
    header: dict[str, Any]
    rtp: list[tuple[float, bytes]] = field(default_factory=list)
    sr: list[tuple[float, int, int]] = field(default_factory=list)  # (arrival, ntp, rtp timestamp)
    notes: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False


class DumpWriter:
    """Append-only writer: ``append_*`` buffers in memory, ``flush`` writes, ``sync`` fsyncs.

    Every OSError (disk full, read-only directory, I/O error) propagates to
    the caller, who decides what failing means.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.buffer = bytearray()
        self.bytes_written = 0
        self.closed = False
        body = json.dumps(header, separators=(",", ":")).encode()
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            self._write(MAGIC + _U32.pack(len(body)) + body)  # fsynced with the records by ``sync``
        except BaseException:
            os.close(self._fd)
            self.closed = True
            raise

    def append_rtp(self, arrival: float, data: bytes) -> None:
        buf = self.buffer
        buf += RECORD.pack(REC_RTP, len(data), arrival)
        buf += data

    def append_sr(self, arrival: float, ntp: int, rtp_timestamp: int) -> None:
        self.buffer += RECORD.pack(REC_SR, _SR.size, arrival) + _SR.pack(
            ntp & 0xFFFFFFFFFFFFFFFF, rtp_timestamp & 0xFFFFFFFF
        )

    def append_note(self, arrival: float, note: dict[str, Any]) -> None:
        body = json.dumps(note, separators=(",", ":")).encode()[:65535]
        self.buffer += RECORD.pack(REC_NOTE, len(body), arrival) + body

    def flush(self) -> int:
        """Write the buffer to the file (the OS has it after this; a killed process loses nothing)."""
        if self.closed or not self.buffer:
            return 0
        data = bytes(self.buffer)
        self.buffer.clear()
        self._write(data)
        return len(data)

    def sync(self) -> None:
        """fsync: the data survives a power loss, not only a killed process."""
        if not self.closed:
            os.fsync(self._fd)

    def close(self, *, sync: bool = True) -> None:
        if self.closed:
            return
        try:
            self.flush()
            if sync:
                os.fsync(self._fd)
        finally:
            self.closed = True
            os.close(self._fd)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            self.bytes_written += n
            view = view[n:]


def read_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 4)
        if len(head) < len(MAGIC) + 4 or head[: len(MAGIC)] != MAGIC:
            raise DumpError(f"{path.name}: not an RTP dump")
        (size,) = _U32.unpack_from(head, len(MAGIC))
        if size > MAX_HEADER:
            raise DumpError(f"{path.name}: header too large")
        body = f.read(size)
    try:
        header = json.loads(body)
    except ValueError as exc:
        raise DumpError(f"{path.name}: unreadable header") from exc
    if not isinstance(header, dict):
        raise DumpError(f"{path.name}: unreadable header")
    return header


def iter_records(data: bytes, start: int) -> Iterator[tuple[int, float, bytes] | None]:
    """(type, arrival, payload) per record; a final ``None`` if the file ends mid-record."""
    n = len(data)
    off = start
    size = RECORD.size
    while off < n:
        if off + size > n:
            yield None
            return
        rtype, length, arrival = RECORD.unpack_from(data, off)
        off += size
        if off + length > n or rtype not in (REC_RTP, REC_SR, REC_NOTE):
            yield None
            return
        yield rtype, arrival, data[off : off + length]
        off += length


def read_dump(path: Path) -> DumpFile:
    """Read a dump, tolerating a truncated tail (a killed writer)."""
    header = read_header(path)
    data = path.read_bytes()
    start = len(MAGIC) + 4 + _U32.unpack_from(data, len(MAGIC))[0]
    dump = DumpFile(path=path, header=header)
    for item in iter_records(data, start):
        if item is None:
            dump.truncated = True
            break
        rtype, arrival, payload = item
        if rtype == REC_RTP:
            dump.rtp.append((arrival, payload))
        elif rtype == REC_SR and len(payload) == _SR.size:
            ntp, rtp_ts = _SR.unpack(payload)
            dump.sr.append((arrival, ntp, rtp_ts))
        elif rtype == REC_NOTE:
            try:
                dump.notes.append(json.loads(payload))
            except ValueError:
                pass
    return dump


def dumps_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*" + SUFFIX) if p.is_file())
