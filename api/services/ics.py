"""iCalendar (RFC 5545), written by hand: one VEVENT per booking (invites), or a feed of many.

Lines end in CRLF, long lines are folded at 75 octets, TEXT values are escaped
(backslash, semicolon, comma, newline) and every time is UTC (``...Z``).
"""

from __future__ import annotations

from datetime import datetime, timezone


def _utc(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def escape_text(value: str) -> str:
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold(line: str) -> str:
    """Fold a content line into chunks of at most 75 octets (continuations start with a space)."""
    raw = line.encode("utf-8")
    if len(raw) <= 75:
        return line
    parts: list[str] = []
    current = b""
    limit = 75
    for ch in line:
        b = ch.encode("utf-8")
        if len(current) + len(b) > limit:
            parts.append(current.decode("utf-8"))
            current = b""
            limit = 74  # the leading space counts
        current += b
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def vevent(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str = "",
    url: str = "",
    organizer_name: str = "",
    organizer_email: str = "",
    stamp: datetime | None = None,
    status: str = "CONFIRMED",
    sequence: int = 0,
) -> list[str]:
    """One VEVENT's content lines (unfolded)."""
    stamp = stamp or datetime.now(timezone.utc)
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_utc(stamp)}",
        f"DTSTART:{_utc(start)}",
        f"DTEND:{_utc(end)}",
        f"SUMMARY:{escape_text(summary)}",
    ]
    if description:
        lines.append(f"DESCRIPTION:{escape_text(description)}")
    if url:
        lines.append(f"URL:{url}")
    if organizer_email:
        cn = f";CN={_param(organizer_name)}" if organizer_name else ""
        lines.append(f"ORGANIZER{cn}:mailto:{organizer_email}")
    lines += [f"STATUS:{status}", f"SEQUENCE:{sequence}", "TRANSP:OPAQUE", "END:VEVENT"]
    return lines


def calendar(events: list[list[str]], *, name: str = "", refresh: str = "") -> bytes:
    """A VCALENDAR of ``events`` (from :func:`vevent`) as bytes; ``refresh`` (e.g. ``PT1H``) tells
    subscribed calendars how often to poll."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//PeerLearn//Bookings//EN", "CALSCALE:GREGORIAN"]
    lines.append("METHOD:PUBLISH")
    if name:
        lines.append(f"X-WR-CALNAME:{escape_text(name)}")
    if refresh:
        lines += [f"REFRESH-INTERVAL;VALUE=DURATION:{refresh}", f"X-PUBLISHED-TTL:{refresh}"]
    for ev in events:
        lines += ev
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")


def event(
    *,
    uid: str,
    start: datetime,
    end: datetime,
    summary: str,
    description: str = "",
    url: str = "",
    organizer_name: str = "",
    organizer_email: str = "",
    stamp: datetime | None = None,
    status: str = "CONFIRMED",
    sequence: int = 0,
) -> bytes:
    """A VCALENDAR with one VEVENT, as bytes ready to attach (text/calendar)."""
    return calendar(
        [
            vevent(
                uid=uid,
                start=start,
                end=end,
                summary=summary,
                description=description,
                url=url,
                organizer_name=organizer_name,
                organizer_email=organizer_email,
                stamp=stamp,
                status=status,
                sequence=sequence,
            )
        ]
    )


def _param(value: str) -> str:
    cleaned = value.replace('"', "'").replace("\r", " ").replace("\n", " ")
    return f'"{cleaned}"' if any(c in cleaned for c in ":;,") else cleaned
