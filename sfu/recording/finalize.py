"""Finalization: a recording's dumps -> one WebM per participant and a typed result.

Blocking: run it in a thread or a process. Safe to run again on the same
directory (after a crash during finalization).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from .rtp_dump import DumpError, dumps_in, read_dump
from .storage import META_FILE, OUTPUT_SUFFIX, RESULT_FILE, RecorderError, write_json_atomic
from .webm import TrackData, load_track, mux_participant

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StreamSummary:
    """One stream of a participant's file: what went in and what was dropped."""

    kind: str
    source: str
    codec: str
    frames: int
    dropped: int


@dataclass(frozen=True)
class RecordedFile:
    """One participant's WebM inside the recording directory."""

    index: int
    name: str
    user_key: str
    display_name: str
    role: str
    app_data: dict[str, Any]
    bytes: int
    duration_ms: int
    streams: list[StreamSummary]
    #: how the tracks were put on one clock: "rtcp-sr" or "arrival"
    sync: str
    #: where this file starts, from the start of the recording
    offset_ms: int


@dataclass(frozen=True)
class RecordingResult:
    """What ``finalize`` made; kept in ``result.json`` so a second call returns it again."""

    files: list[RecordedFile]
    bytes: int
    duration_ms: int
    started_at: Optional[float] = None
    truncated_dumps: int = 0
    participants: list[dict[str, str]] = field(default_factory=list)
    #: interruptions the recording went on after (its process died mid-class), from its start
    gaps: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordingResult:
        files = [RecordedFile(**{**f, "streams": [StreamSummary(**s) for s in f["streams"]]}) for f in data["files"]]
        return cls(
            files=files,
            bytes=int(data["bytes"]),
            duration_ms=int(data["duration_ms"]),
            started_at=data.get("started_at"),
            truncated_dumps=int(data.get("truncated_dumps") or 0),
            participants=list(data.get("participants") or []),
            gaps=[{"start_ms": int(g["start_ms"]), "end_ms": int(g["end_ms"])} for g in data.get("gaps") or []],
        )


def finalize(directory: Path, *, remove_dumps: bool = True) -> RecordingResult:
    """Mux a recording's dumps into one WebM per participant (blocking; no transcoding).

    Returns what it made and writes it to ``result.json``. Safe to run again on the same directory
    (after a crash during finalization). Raises RecorderError if nothing
    playable was captured.
    """
    directory = Path(directory)
    done = directory / RESULT_FILE
    if done.exists():  # finalized before (maybe killed while removing the dumps)
        if remove_dumps:
            for path in dumps_in(directory):
                path.unlink(missing_ok=True)
        return RecordingResult.from_json(json.loads(done.read_text()))
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        meta = {}
    by_user: dict[str, list[TrackData]] = {}
    names: dict[str, dict[str, Any]] = {}
    truncated = 0
    for path in dumps_in(directory):
        try:
            dump = read_dump(path)
        except (DumpError, OSError) as exc:
            logger.warning("skipping %s: %s", path, exc)
            continue
        truncated += dump.truncated
        track = load_track(dump)
        if track is None:
            continue
        key = str(dump.header.get("user_key"))
        by_user.setdefault(key, []).append(track)
        names.setdefault(
            key,
            {
                "user_key": key,
                "display_name": dump.header.get("display_name") or key,
                "role": dump.header.get("role") or "",
                "app_data": dump.header.get("app_data") or {},
            },
        )
    if not by_user:
        raise RecorderError("nothing was recorded")
    started = float(meta.get("started_at") or 0.0)
    files: list[RecordedFile] = []
    for key in sorted(by_user, key=lambda k: min(t.order for t in by_user[k])):
        info = names[key]
        safe = "".join(ch for ch in key if ch.isalnum() or ch in "-_")[:40] or "participant"
        path = directory / f"participant-{len(files) + 1}-{safe}{OUTPUT_SUFFIX}"
        muxed = mux_participant(by_user[key], path)
        files.append(
            RecordedFile(
                index=len(files),
                name=path.name,
                user_key=key,
                display_name=str(info["display_name"]),
                role=str(info["role"]),
                app_data=dict(info["app_data"]),
                bytes=path.stat().st_size,
                duration_ms=int(muxed["duration_ms"]),
                streams=[StreamSummary(**s) for s in muxed["streams"]],
                sync=str(muxed["sync"]),
                offset_ms=max(0, round((muxed["origin"] - started) * 1000)) if started else 0,
            )
        )
    result = RecordingResult(
        files=files,
        bytes=sum(f.bytes for f in files),
        duration_ms=max(f.offset_ms + f.duration_ms for f in files),
        started_at=started or None,
        truncated_dumps=truncated,
        participants=[{"user_key": f.user_key, "display_name": f.display_name, "role": f.role} for f in files],
        gaps=_gaps_ms(meta.get("gaps") or [], started),
    )
    write_json_atomic(done, result.to_json())
    if remove_dumps:
        for path in dumps_in(directory):
            path.unlink(missing_ok=True)
    return result


def _gaps_ms(gaps: list[dict[str, Any]], started: float) -> list[dict[str, int]]:
    """The metadata's interruptions (wall times) as offsets from the recording's start."""
    out = []
    for gap in gaps:
        try:
            start, end = float(gap["from"]), float(gap["to"])
        except (KeyError, TypeError, ValueError):
            continue
        if started and end > start:
            out.append({"start_ms": max(0, round((start - started) * 1000)), "end_ms": round((end - started) * 1000)})
    return out
