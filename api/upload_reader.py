"""The one file of a multipart upload (field ``file``), read with a size check per chunk.

A body aiohttp's multipart reader cannot parse (no or a wrong boundary, a body cut short, a NUL
in a part header) is the sender's mistake: a 400 ``malformed_request``, never a 500."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import BadHttpMessage

from api.errors import ApiError


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes


async def read_file_field(
    request: web.Request, what: str, check_size: Callable[[int], None], chunk: int
) -> UploadedFile:
    """The ``file`` field of a multipart/form-data body; ``check_size(bytes so far)`` raises to stop
    reading a file that is already too large. ``what``: "the file", "the image" (for messages)."""
    if not request.content_type.startswith("multipart/"):
        raise ApiError(
            400, "validation_error", f"Send {what} as multipart/form-data field 'file'.", {"file": "required"}
        )
    try:
        reader = await request.multipart()
        part = await reader.next()
        while part is not None and getattr(part, "name", None) != "file":
            part = await reader.next()
        if part is None or not isinstance(part, BodyPartReader):
            raise ApiError(400, "validation_error", "Field 'file' is required.", {"file": "required"})
        data = bytearray()
        while block := await part.read_chunk(chunk):
            data.extend(block)
            check_size(len(data))
    except (ValueError, BadHttpMessage) as exc:
        raise ApiError(400, "malformed_request", f"The upload could not be read: {exc}") from exc
    return UploadedFile(
        part.filename or "file", part.headers.get("Content-Type", "application/octet-stream"), bytes(data)
    )
