"""What room_quality.py reads from its page samples: the layer timeline, rates per rid, the
estimate, recovery after a blackout, and the first-frame / HD times per pair."""

from __future__ import annotations

from types import SimpleNamespace

from benchmarks import media_timeline as mt
from benchmarks.join_times import pair_times

T0 = 1_000_000.0


def sample(dt_ms: float, decoded: dict[str, list[int]], sent: dict[str, int], est: float | None, gen: int = 1) -> list:
    return [T0 + dt_ms, gen, decoded, sent, est]


def test_heights_every_250_ms_with_zero_before_the_first_frame() -> None:
    samples = [
        sample(0, {}, {}, None),
        sample(50, {"p1": [1, 180]}, {}, None),  # thinned away: within 250 ms of the first
        sample(250, {"p1": [5, 360]}, {}, None),
        sample(500, {"p1": [9, 720], "p2": [1, 180]}, {}, None),
    ]
    assert mt.heights(samples, T0) == {
        "p1": [[0.0, 0], [0.25, 360], [0.5, 720]],
        "p2": [[0.0, 0], [0.25, 0], [0.5, 180]],
    }


def test_rates_per_rid_restart_on_a_new_connection() -> None:
    samples = [
        sample(0, {}, {"q": [0, 0], "f": [0, 0]}, 300_000),
        sample(500, {}, {"q": [10_000, 12], "f": [50_000, 12]}, 1_000_000),
        sample(1000, {}, {"q": [2_000, 3], "f": [1_000, 2]}, None, gen=2),  # a rejoin: counters from zero
        sample(1500, {}, {"q": [1_000, 5], "f": [2_000, 14]}, None, gen=2),  # went backwards: 0
    ]
    assert mt.rid_rates(samples, T0) == {
        "q": [[0.5, 160.0, 24.0], [1.0, 32.0, 6.0], [1.5, 0.0, 0.0]],
        "f": [[0.5, 800.0, 24.0], [1.0, 16.0, 4.0], [1.5, 16.0, 24.0]],
    }
    assert mt.estimates(samples, T0) == [[0.0, 300.0], [0.5, 1000.0]]


def test_recovery_counts_from_the_network_s_return() -> None:
    samples = [[T0 + t, n, 1] for t, n in ((0, 10), (1000, 11), (2000, 11), (2100, 11), (2150, 12))]
    assert mt.recovery_s(samples, T0 + 2000) == 0.15
    assert mt.recovery_s(samples, T0 + 2150) is None
    # a rejoin: any frame on the new connection
    assert mt.recovery_s([[T0, 10, 1], [T0 + 900, 1, 2]], T0 + 100) == 0.8
    assert mt.frames_of([sample(0, {"p1": [7, 360]}, {}, None)], "p1") == [[T0, 7, 1]]
    assert mt.frames_of([sample(0, {}, {}, None)], "p1") == [[T0, 0, 1]]


def test_pair_times_from_the_later_connection() -> None:
    mentor = SimpleNamespace(name="mentor", entered_at=T0)
    learner = SimpleNamespace(name="learner", entered_at=T0 + 3000)
    names = {"mentor": "pm", "learner": "pl"}
    rq = {
        "mentor": {"connected": [{"gen": 1, "at": T0 + 500}], "first": {"1|pl|camera": T0 + 4000}, "hd": {}},
        "learner": {
            "connected": [{"gen": 1, "at": T0 + 3500}],
            "first": {"1|pm|camera": T0 + 3700},
            "hd": {"1|pm|camera": T0 + 4100},
        },
    }
    rows = {(r["subscriber"], r["publisher"]): r for r in pair_times(rq, [mentor, learner], names)}
    assert rows["learner", "mentor"] == {
        "subscriber": "learner",
        "publisher": "mentor",
        "after_connected_s": 0.2,
        "after_page_open_s": 0.7,
        "hd_after_connected_s": 0.6,
    }
    assert rows["mentor", "learner"]["after_connected_s"] == 0.5
    assert rows["mentor", "learner"]["hd_after_connected_s"] is None


def test_timeline_names_people() -> None:
    samples = {"mentor": [sample(0, {"pl": [1, 720]}, {"f": [0, 0]}, 2_000_000)], "learner": []}
    tl = mt.timeline(samples, {"pl": "learner", "pm": "mentor"}, T0)
    assert tl["decoded_height"] == {"mentor": {"learner": [[0.0, 720]]}, "learner": {}}
    assert tl["estimate_kbps"] == {"mentor": [[0.0, 2000.0]], "learner": []}
