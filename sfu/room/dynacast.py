"""Dynacast: the simulcast layers of a publisher that no subscriber needs are paused at
the publisher's browser, and resumed the moment one is needed again.

A class where everyone watches the gallery shows every camera in a small tile: nobody
needs the 720-row layer, yet every browser would encode and upload it. The router asks
this module, per simulcast producer, which layers its subscribers need (``highest_needed``:
the largest of each consumer's wish by its tile size, and of what it is being sent now) and
tells the publisher's page which of its encodings to keep active; the page sets
``RTCRtpEncodingParameters.active`` (``publish-layers`` in sfu/README.md), it never
renegotiates.

Rules (``LayerDemand``):
- the lowest layer is never paused: a subscriber who arrives needs a picture at once;
- every layer up to the highest needed stays on, not only that one: a subscriber whose
  downlink cannot take its layer falls back to the next one down, which must be there;
- a layer is paused only after it was not needed for ``PAUSE_AFTER`` seconds (a tile being
  resized or a speaker changing back and forth must not make the publisher's encoder
  start and stop), and resumed at once.
- a producer nobody subscribes to keeps every layer: the next arrival (a 1:1 learner, most
  often) wants the top layer at once, and a browser's bandwidth estimate only keeps growing
  while it sends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from ..rtp.layers import LayerState, choose_layer
from .consumer import Consumer
from .producer import Producer

#: a layer nobody needed for this long is paused at the publisher
PAUSE_AFTER = 3.0


def layer_for_size(states: list[LayerState], *, max_height: Optional[int], current: int) -> int:
    """The layer a tile of ``max_height`` device pixels calls for if every layer were sending
    and the link were free: the size rule of ``choose_layer`` alone. A paused layer keeps the
    height of its last keyframe; a layer never seen (height 0) counts as maybe tall enough
    only from above, so an unknown ladder errs towards keeping layers on."""
    sending = [LayerState(True, 0, s.height) for s in states]
    return choose_layer(sending, current=current, estimate_bps=None, max_height=max_height)


def consumer_needs(consumer: Consumer, states: list[LayerState]) -> int:
    """The highest layer one subscriber needs now: what its tile calls for, or what it is
    on or heading to if that is higher (taking a layer from under a subscriber would freeze
    its picture until it switched down)."""
    switch = consumer.switch
    if switch is None:
        return len(states) - 1
    current = switch.current if switch.current >= 0 else switch.target
    by_size = layer_for_size(states, max_height=consumer.max_height, current=current)
    return max(by_size, switch.current, switch.target if consumer.ready else 0)


def highest_needed(producer: Producer, consumers: Iterable[Consumer], *, recording: bool) -> int:
    """The highest layer of ``producer`` that anyone needs: its subscribers, and the
    recorder (a recording keeps the best layer the publisher can send)."""
    top = len(producer.layers) - 1
    consumers = [c for c in consumers if not c.closed]
    if recording or not consumers:
        return top
    states = producer.layer_states()
    return max(consumer_needs(c, states) for c in consumers)


class LayerDemand:
    """One simulcast producer's layers as the publisher is asked to send them."""

    def __init__(self, layers: int, now: float) -> None:
        if layers < 1:
            raise TypeError("a producer has at least one layer")
        #: what the publisher was last told (a fresh publisher sends every layer)
        self.active = [True] * layers
        self._needed_at = [now] * layers

    def update(self, highest: int, now: float) -> Optional[list[bool]]:
        """Layers 0..``highest`` are needed now: the new active list when it changed."""
        changed = False
        for i in range(1, len(self.active)):
            if i <= highest:
                self._needed_at[i] = now
                if not self.active[i]:
                    self.active[i] = changed = True
            elif self.active[i] and now - self._needed_at[i] >= PAUSE_AFTER:
                self.active[i] = False
                changed = True
        return list(self.active) if changed else None


@dataclass(frozen=True)
class LayerChange:
    """What to tell one publisher: ``active`` per rid of its track ``producer``; ``resumed``
    when a layer came back on (its subscribers should look for it)."""

    producer: Producer
    active: dict[str, bool]
    resumed: bool


class Dynacast:
    """The router's layer demand for every simulcast producer of its room."""

    def __init__(self) -> None:
        self._demand: dict[str, LayerDemand] = {}
        #: layers resumed so far (tests and stats), and paused
        self.resumed = 0
        self.paused = 0

    def update(
        self, producer: Producer, consumers: Iterable[Consumer], *, recording: bool, now: float
    ) -> Optional[LayerChange]:
        """Re-evaluate ``producer`` (a simulcast camera); a change to send, or None."""
        if not producer.simulcast or producer.closed or len(producer.rids) != len(producer.layers):
            return None
        demand = self._demand.get(producer.id)
        if demand is None:
            demand = self._demand[producer.id] = LayerDemand(len(producer.layers), now)
        before = list(demand.active)
        active = demand.update(highest_needed(producer, consumers, recording=recording), now)
        if active is None:
            return None
        resumed = sum(1 for was, on in zip(before, active) if on and not was)
        self.resumed += resumed
        self.paused += sum(1 for was, on in zip(before, active) if was and not on)
        return LayerChange(producer, dict(zip(producer.rids, active)), resumed > 0)

    def active(self, producer_id: str) -> Optional[list[bool]]:
        """The layers ``producer_id``'s publisher was last asked to send (None: all, untouched)."""
        demand = self._demand.get(producer_id)
        return list(demand.active) if demand is not None else None

    def forget(self, live: Iterable[str]) -> None:
        """Drop the state of producers that are gone (only ``live`` ids stay)."""
        keep = set(live)
        for gone in [pid for pid in self._demand if pid not in keep]:
            del self._demand[gone]
