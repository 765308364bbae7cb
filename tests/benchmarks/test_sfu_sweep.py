"""The capacity sweep's stop rule: the generator is judged before the server is blamed."""

from __future__ import annotations

from typing import Any

from benchmarks.load_sweep import busy_note, verdict


def step(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "generator": {"saturated": False, "saturation": []},
        "join_failures": [],
        "streams_expected": 40,
        "streams_flowing": 40,
        "loss_pct": 0.0,
        "latency_ms": {"p99": 3.0},
        "runqueue_wait_share": {"sfu": 0.05, "generator": 0.05},
    }
    base.update(changes)
    return base


def test_a_good_step_goes_on() -> None:
    assert verdict(step()) is None
    assert verdict(step(latency_ms=None)) is None  # no samples: not a failure by itself


def test_the_servers_limits() -> None:
    assert verdict(step(loss_pct=0.6)).startswith("server: loss 0.60 %")  # type: ignore[union-attr]
    assert verdict(step(latency_ms={"p99": 12.5})).startswith("server: SFU-added latency p99 12.5 ms")  # type: ignore[union-attr]
    assert verdict(step(streams_flowing=38)) == "server: 2 streams not flowing"


def test_a_saturated_generator_is_never_the_servers_fault() -> None:
    gen = {"saturated": True, "saturation": ["frames left 40 ms late (p99)"]}
    out = verdict(step(generator=gen, loss_pct=3.0, latency_ms={"p99": 80.0}))
    assert out == "generator saturated: frames left 40 ms late (p99)"


def test_failed_joins_blame_nobody() -> None:
    assert verdict(step(join_failures=["TimeoutError()"])) == "joins failed: TimeoutError()"


def test_a_busy_machine_is_named() -> None:
    assert busy_note(step()) == ""
    assert "waited for a CPU 40%" in busy_note(step(runqueue_wait_share={"sfu": 0.4, "generator": 0.1}))
