"""Active speaker with Opus DTX: a participant who is silent sends a packet every 400 ms
instead of every 20 ms, so counting packets would make one cough look like a speech."""

from __future__ import annotations

from sfu.room.speaker import SpeakerDetector

VOICED, SILENT = 0x80 | 30, 0x7F


def test_a_cough_between_dtx_silences_does_not_take_the_spotlight_from_someone_talking() -> None:
    changes: list[str | None] = []
    det = SpeakerDetector(on_change=lambda user, peer: changes.append(user))
    for second in range(4):
        base = second * 48000
        # the cougher: 100 ms of voice, then DTX silence (one packet every 400 ms)
        for i in range(5):
            det.add_level("cougher", "p1", VOICED, base + i * 960)
        for t in (0.5, 0.9):
            det.add_level("cougher", "p1", SILENT, base + int(t * 48000))
        # the speaker: voiced 60 % of the time, 20 ms packets throughout (no DTX while talking)
        for i in range(50):
            det.add_level("talker", "p2", VOICED if i % 5 < 3 else SILENT, base + i * 960)
        det.evaluate()
    assert det.active_user == "talker" and "cougher" not in changes
    assert det.talk_time()["cougher"] < 1.0  # of 4 s: the silences are not talk
