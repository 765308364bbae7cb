"""The batched access log: one line per request, secrets redacted, written together."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from api.access_log_batch import AccessLogBuffer, access_logger_class


async def test_lines_are_redacted_and_written_as_one_record(caplog) -> None:
    logger = logging.getLogger("test.access.batch")
    buffer = AccessLogBuffer(logger)
    access = access_logger_class(buffer)(logger, "")
    for path in ("/ws/room/5?token=abc.def&x=1", "/api/sessions?domain=Programming"):
        request = make_mocked_request("GET", path, headers={"Referer": "http://h/reset?token=s3cret"})
        access.log(request, web.Response(status=200, body=b"{}"), 0.0012)
    assert len(buffer.lines) == 2
    with caplog.at_level(logging.INFO, logger="test.access.batch"):
        buffer.flush()
    (record,) = caplog.records
    text = record.getMessage()
    assert "abc.def" not in text and "s3cret" not in text
    assert "/ws/room/5?token=[redacted]&x=1" in text and '"GET /api/sessions?domain=Programming HTTP/1.1" 200' in text
    assert len(text.splitlines()) == 2 and buffer.lines == []
