"""Class materials: the mentor attaches files to a session, booked learners download them,
everyone else gets 404; types are judged by content (a renamed executable is refused), sizes
per file and per session, deletion, and retention with the session's recordings."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import aiohttp
import pytest

from api.app import create_app
from api.context import Context
from api.keys import DB, SETTINGS
from api.models import Session, utcnow
from api.services import materials
from tests.api.helpers_marketplace import book, make_session
from tests.conftest import signup

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\0" * 200 + b"This program cannot be run in DOS mode."
ELF = b"\x7fELF\x02\x01\x01" + b"\0" * 100


async def upload(user, session_id, name, data, ctype="application/pdf"):
    form = aiohttp.FormData(quote_fields=False)  # as browsers send it: the name as typed
    form.add_field("file", data, filename=name, content_type=ctype)
    return await user.post(f"/api/sessions/{session_id}/materials", data=form)


@pytest.fixture
async def booked(client, learner, mentor):
    sid = await make_session(client, mentor.id)
    await book(client, sid, learner.id)
    return sid


async def test_mentor_attaches_and_booked_learners_download(client, learner, mentor, booked):
    resp = await upload(mentor, booked, "Week 1 slides.pdf", PDF)
    assert resp.status == 201, await resp.text()
    m = await resp.json()
    assert m["name"] == "Week 1 slides.pdf" and m["content_type"] == "application/pdf" and m["bytes"] == len(PDF)
    listed = await (await learner.get(f"/api/sessions/{booked}/materials")).json()
    assert [x["id"] for x in listed["items"]] == [m["id"]]
    resp = await learner.get(m["url"])
    assert resp.status == 200 and await resp.read() == PDF
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert (await mentor.get(m["url"])).status == 200


async def test_type_is_checked_by_content_not_name(client, mentor, booked):
    for name, data in (("slides.pdf", EXE), ("notes.txt", ELF), ("photo.png", b"\0\1\2\3binary")):
        resp = await upload(mentor, booked, name, data)
        assert resp.status == 415, (name, await resp.text())
        assert (await resp.json())["error"]["code"] == "unsupported_media_type"
    png = await (await upload(mentor, booked, "diagram.exe", PNG, "application/x-msdownload")).json()
    assert png["content_type"] == "image/png"
    text = await (await upload(mentor, booked, "homework.md", "# Homework\n\n1. Read chapter 2 ✓\n".encode())).json()
    assert text["content_type"] == "text/plain; charset=utf-8"
    listed = await (await mentor.get(f"/api/sessions/{booked}/materials")).json()
    assert len(listed["items"]) == 2
    assert not list((client.app[SETTINGS].data_dir / "materials" / str(booked)).glob("*.tmp"))


PART = 'Content-Disposition: form-data; name="file"; filename="{name}"\r\nContent-Type: text/plain\r\n\r\nhello\r\n'
MALFORMED = {
    "nul-in-filename": ("XyZb", f"--XyZb\r\n{PART.format(name='a' + chr(0) + 'b.txt')}--XyZb--\r\n"),
    "no-boundary": (None, f"--XyZb\r\n{PART.format(name='a.txt')}--XyZb--\r\n"),
    "empty-boundary": ("", f"--XyZb\r\n{PART.format(name='a.txt')}--XyZb--\r\n"),
    "wrong-boundary": ("QQQ", f"--XyZb\r\n{PART.format(name='a.txt')}--XyZb--\r\n"),
    "cut-short": ("XyZb", "--XyZb\r\nContent-Disposition: form-da"),
    "empty-body": ("XyZb", ""),
    "boundary-too-long": ("B" * 80, f"--{'B' * 80}\r\n{PART.format(name='a.txt')}--{'B' * 80}--\r\n"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_a_malformed_upload_is_a_readable_400(client, mentor, learner, booked, case):
    """A multipart body that cannot be parsed (by hand-made clients or attackers) gets a 400
    saying so, for class materials and for a profile picture alike (both were 500s); nothing is
    stored."""
    boundary, text = MALFORMED[case]
    ctype = "multipart/form-data" + (f"; boundary={boundary}" if boundary is not None else "")
    for user, path in ((mentor, f"/api/sessions/{booked}/materials"), (learner, f"/api/users/{learner.id}/avatar")):
        resp = await user.post(path, data=text.encode(), headers={"Content-Type": ctype})
        assert resp.status == 400, (path, await resp.text())
        assert (await resp.json())["error"]["code"] in ("malformed_request", "validation_error")
    assert (await (await mentor.get(f"/api/sessions/{booked}/materials")).json())["items"] == []


async def test_files_larger_than_a_request_body_are_taken(client, learner, mentor, booked):
    big = PDF + b"%" * (6 * 1024 * 1024)  # over the 5 MB limit of JSON bodies
    resp = await upload(mentor, booked, "big.pdf", big)
    assert resp.status == 201, await resp.text()
    assert len(await (await learner.get((await resp.json())["url"])).read()) == len(big)


async def test_size_limits_per_file_and_per_session(aiohttp_client, settings):
    small = dataclasses.replace(settings, max_material_bytes=1000, max_session_material_bytes=2500)
    client = await aiohttp_client(create_app(small))
    mentor = await signup(client, "mentor")
    sid = await make_session(client, mentor.id)
    resp = await upload(mentor, sid, "huge.pdf", PDF + b"x" * 1000)
    assert resp.status == 413 and (await resp.json())["error"]["code"] == "payload_too_large"
    for _ in range(2):
        assert (await upload(mentor, sid, "part.pdf", PDF + b"x" * 900)).status == 201
    assert (await upload(mentor, sid, "one-too-many.pdf", PDF + b"x" * 900)).status == 413


async def test_everyone_else_gets_404(client, learner, mentor, admin, booked):
    m = await (await upload(mentor, booked, "slides.pdf", PDF)).json()
    other_learner = await signup(client, "learner")
    other_mentor = await signup(client, "mentor")
    for user in (other_learner, other_mentor):
        assert (await user.get(f"/api/sessions/{booked}/materials")).status == 404
        assert (await user.get(m["url"])).status == 404
    assert (await upload(other_mentor, booked, "x.pdf", PDF)).status == 404
    assert (await upload(learner, booked, "x.pdf", PDF)).status == 403
    assert (await other_mentor.delete(m["url"])).status == 404
    assert (await admin.get(m["url"])).status in (403, 404)
    assert (await client.get(m["url"])).status == 401


async def test_mentor_deletes_a_file(client, learner, mentor, booked):
    m = await (await upload(mentor, booked, "old.pdf", PDF)).json()
    folder = client.app[SETTINGS].data_dir / "materials" / str(booked)
    assert len(list(folder.iterdir())) == 1
    assert (await mentor.delete(m["url"])).status == 204
    assert (await learner.get(m["url"])).status == 404
    assert list(folder.iterdir()) == []


async def test_removed_with_the_sessions_retention(client, learner, mentor, booked):
    m = await (await upload(mentor, booked, "slides.pdf", PDF)).json()
    ctx = Context.of(client.app)
    assert await materials.apply_retention(ctx) == 0
    async with client.app[DB].write() as s:
        (await s.get(Session, booked)).starts_at = utcnow() - timedelta(days=400)
    assert await materials.apply_retention(ctx) == 1
    assert (await learner.get(m["url"])).status == 404
    assert not (client.app[SETTINGS].data_dir / "materials" / str(booked)).exists()
