"""Simulcast layers on the forwarding side: which layer each subscriber gets, and the
switch from one layer to another without a broken picture.

A publisher sending simulcast has one ``RtpForwarder`` per layer (lowest quality
first). Each consumer of it owns a ``LayerSwitch``: one tap in every layer's forwarder,
of which only the current layer's packets reach the consumer's rewriter. A new target
layer takes over at its next keyframe (the switch asks the publisher for one), so the
subscriber sees the old layer until the new one can be decoded, and the rewriter keeps
sequence numbers and timestamps continuous across the change.

``choose_layer`` is the policy: the smallest layer at least as tall as the tile the
subscriber shows the video in (device pixels; a smaller one would be upscaled and look
soft), or the largest that fits its downlink if that is smaller, with margins both ways
so a subscriber near a threshold does not flap between layers. ``DownlinkGauge`` says what the downlink can
take: an SFU that does not probe cannot measure spare bandwidth (a browser's REMB
follows what it receives, so a subscriber held on a small layer would never report room
for a larger one), so the gauge assumes room until the subscriber shows congestion
(loss in its receiver reports, or a REMB well under what it is being sent), caps below
that, and lifts the cap again after a quiet spell, waiting longer each time it had to
back off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Optional

from . import native
from .forwarding import CallSink, RtpRewriter
from .header_extensions import ExtensionWriter

#: a layer must fit the estimate with this much room to be chosen (down at once when not)
UP_MARGIN = 1.25
DOWN_MARGIN = 1.0
#: a layer up to this share shorter than the tile still counts as tall enough when the
#: subscriber is on it or below it (a few percent of upscaling cannot be seen); to step
#: down, the smaller layer must cover the tile entirely. Between the two the subscriber
#: stays where it is, so a tile hovering around a layer's height does not flap.
SIZE_TOLERANCE = 0.1


@dataclass(frozen=True)
class LayerState:
    """What the server knows of one layer right now."""

    active: bool
    bitrate: int  # bits per second, measured at ingress
    height: int  # from its last keyframe, 0 until one arrived
    fps: float = 0.0  # frames per second at ingress, 0 when not measured


#: a layer sending fewer frames than this share of the layer below it is not worth climbing to:
#: under loss Chromium's encoder starves its top layer first (720p at 9 fps beside 360p at 24),
#: and a learner sees motion before pixels ...
FPS_UP = 0.6
#: ... and one already on it is taken down below this share (hysteresis)
FPS_KEEP = 0.45
#: the rule applies only where the layer below moves at least this fast (a slide deck at 5 fps
#: on every layer is not starved)
FPS_MOVING = 12.0


def choose_layer(
    layers: list[LayerState], *, current: int, estimate_bps: Optional[int], max_height: Optional[int]
) -> int:
    """The index of the layer a subscriber should receive (lowest quality first): the
    smallest at least as tall as ``max_height`` (the tile, device pixels), capped by
    ``estimate_bps`` and by frame rate (``FPS_UP``); ``current`` is the layer it gets now
    (for hysteresis)."""
    active = [i for i, layer in enumerate(layers) if layer.active]
    if not active:
        return max(current, 0)
    best = active[0]
    for i in active[1:]:
        below = layers[best].height
        if max_height is not None and below:
            # ``best`` is tall enough for the tile: rounding up stops here
            tall_enough = below >= max_height if best < current else below * (1 + SIZE_TOLERANCE) >= max_height
            if tall_enough:
                break
        if estimate_bps is not None:
            margin = DOWN_MARGIN if i <= current else UP_MARGIN
            if layers[i].bitrate * margin > estimate_bps:
                break
        below_fps = layers[best].fps
        if below_fps >= FPS_MOVING and layers[i].fps < below_fps * (FPS_KEEP if i <= current else FPS_UP):
            break  # a starved layer: the smoother one below looks better
        best = i
    return best


def without_frame_rates(layers: list[LayerState]) -> list[LayerState]:
    """``layers`` as the size and rate rules alone see them (the frame-rate rule off)."""
    return [LayerState(s.active, s.bitrate, s.height) for s in layers]


#: a subscriber taken off a starved layer does not climb back to it for this long ...
STARVED_HOLD_SECONDS = 8.0
#: ... twice as long each time a climb back ended starved again within its hold, up to this
STARVED_HOLD_MAX_SECONDS = 64.0


class StarvedLayerHold:
    """Keeps one subscriber off a layer the publisher starved, for a while.

    Chromium under uplink loss starves its top layer at about the rate that puts it at the
    frame-rate thresholds of ``choose_layer`` (13-20 fps beside 24 below, measured): climbing
    back costs a keyframe of every layer (Chromium's VP8 simulcast seems to answer a request
    on one layer with a keyframe on each: every layer counts as many), the keyframes starve the top layer again, and each fall
    waits for a keyframe of the layer below: a wait a learner sees. So a fall for frame rate
    keeps the subscriber below for ``STARVED_HOLD_SECONDS``, doubled each time the climb that
    followed ended the same way (the back-off of ``DownlinkGauge``)."""

    def __init__(self) -> None:
        self._ceiling: Optional[int] = None
        self._until = float("-inf")
        self._hold = STARVED_HOLD_SECONDS
        self._climbed_at = float("-inf")
        self.falls = 0

    def limit(self, target: int, *, current: int, starved_below: bool, now: float) -> int:
        """The layer to aim at instead of ``target``; ``starved_below``: ``target`` is under
        ``current`` only because of the frame-rate rule."""
        if target < current and starved_below and (target != self._ceiling or now >= self._until):
            if now - self._climbed_at < 2 * self._hold:
                self._hold = min(self._hold * 2, STARVED_HOLD_MAX_SECONDS)  # the last climb failed
            elif now - self._climbed_at > 4 * self._hold:
                self._hold = STARVED_HOLD_SECONDS
            self._ceiling, self._until = target, now + self._hold
            self.falls += 1
            return target
        if self._ceiling is None or target <= self._ceiling:
            return target
        if now < self._until:
            return self._ceiling
        self._ceiling = None
        self._climbed_at = now
        return target


#: congestion: more loss than this in a receiver report ...
LOSS_CONGESTED = 0.10
#: ... or a REMB under this share of what the subscriber is being sent
REMB_CONGESTED = 0.7
#: a switch needs this long before the subscriber's reports describe the new layer
SETTLE_SECONDS = 3.0
RETRY_SECONDS = 8.0
RETRY_MAX_SECONDS = 64.0


class DownlinkGauge:
    """How much video one subscriber's downlink takes, from its own reports."""

    def __init__(self) -> None:
        self.cap: Optional[int] = None  # bits per second; None: no sign of a limit
        self.congestions = 0
        self._quiet_since = 0.0
        self._lifted_at = float("-inf")
        self._retry = RETRY_SECONDS

    def on_report(
        self, *, now: float, loss: Optional[float], remb: Optional[int], sending_bps: int, since_switch: float
    ) -> None:
        """A receiver report (``loss``, 0..1) or a REMB arrived while we send ``sending_bps``."""
        if since_switch < SETTLE_SECONDS or sending_bps <= 0:
            return
        congested = (loss is not None and loss > LOSS_CONGESTED) or (
            remb is not None and remb < REMB_CONGESTED * sending_bps
        )
        if not congested:
            return
        if self.cap is None or sending_bps * 0.85 < self.cap:
            self.cap = int(sending_bps * 0.85)
            self.congestions += 1
            if now - self._lifted_at < self._retry:
                self._retry = min(self._retry * 2, RETRY_MAX_SECONDS)  # the last retry failed
        self._quiet_since = now

    def estimate(self, now: float) -> Optional[int]:
        """The cap to choose a layer with; lifted after a quiet spell, to try again."""
        if self.cap is not None and now - self._quiet_since > self._retry:
            self.cap = None
            self._quiet_since = self._lifted_at = now
        return self.cap


#: a switch passes over at most this many late keyframes in a row (then takes the next one)
LATE_KEYFRAMES_SKIPPED = 2


class _LayerTap:
    """What one layer's forwarder calls for one consumer (the rewriter's signature)."""

    __slots__ = ("switch", "layer")

    def __init__(self, switch: LayerSwitch, layer: int) -> None:
        self.switch = switch
        self.layer = layer

    def forward(
        self,
        b1: int,
        pt: int,
        seq: int,
        ts: int,
        payload: bytes,
        abs3: Optional[bytes],
        level: Optional[bytes],
        keyframe: bool,
        now: float,
    ) -> None:
        switch = self.switch
        if not switch.enabled:
            return
        if self.layer != switch.current:
            # the target layer takes over at its keyframe; before anything was forwarded, the
            # first keyframe of any layer starts the picture (the target may not be sending
            # yet: a browser ramps its layers up one by one) and the switch follows later
            if not keyframe or (self.layer != switch.target and switch.current >= 0):
                return
            if (
                switch.current >= 0
                and switch.late_in_row < LATE_KEYFRAMES_SKIPPED
                and switch.arrived_after(self.layer, seq)
            ):
                # a repaired (late) first packet of the keyframe: the rest of the frame came
                # before it and was not ours to forward, so the subscriber could never decode
                # it (a broken picture until the next keyframe, 3.5 s seen under 5 % loss);
                # the old layer plays on and the switch waits for the next keyframe (asked
                # again within SWITCH_RETRY_SECONDS). Not for a first picture (nothing plays
                # yet; session 8 found that refusing it there starved a learner on a shaped
                # uplink, whose keyframes come as repairs often), nor more than twice running.
                switch.late_keyframes += 1
                switch.late_in_row += 1
                return
            switch.late_in_row = 0
            switch.current = self.layer
            switch.switches += 1
            switch.rewriter.resync()
        switch.rewriter.forward(b1, pt, seq, ts, payload, abs3, level, keyframe, now)

    def resync(self) -> None:
        # only the layer the consumer is on: a hole in another layer is not its concern
        if self.layer == self.switch.current:
            self.switch.rewriter.resync()


class LayerSwitch:
    """One consumer's view of a simulcast producer: the current and the target layer."""

    def __init__(
        self,
        rewriter: RtpRewriter,
        layers: int,
        request_keyframe: Callable[[int], None],
        arrived_after: Callable[[int, int], bool] = lambda _layer, _seq: False,
    ) -> None:
        self.rewriter = rewriter
        self.taps = [_LayerTap(self, i) for i in range(layers)]
        self.current = -1
        self.target = layers - 1
        self.switches = 0
        #: keyframes not switched to: their first packet came after the rest (a repair)
        self.late_keyframes = 0
        self.late_in_row = 0
        #: (layer, seq): a newer packet than ``seq`` already arrived on ``layer``
        self.arrived_after = arrived_after
        self.enabled = True
        self._request_keyframe = request_keyframe

    def set_target(self, layer: int) -> None:
        if layer != self.target:
            self.target = layer
            if layer != self.current:
                self._request_keyframe(layer)

    def request_keyframe(self) -> None:
        """The subscriber lost the picture: a keyframe of the layer it is on (or heading to)."""
        self._request_keyframe(self.target if self.current < 0 else self.current)

    @property
    def pending(self) -> bool:
        """A switch waits for the target layer's keyframe."""
        return self.target != self.current

    def request_target_keyframe(self) -> None:
        """Ask again for the keyframe the pending switch waits for (the first request or its
        keyframe may have been lost, or come while the layer was paused)."""
        self._request_keyframe(self.target)


class RecordingFeed:
    """What the recorder gets of a simulcast camera: the highest layer that is sending, as
    one continuous stream (one SSRC; sequence numbers and timestamps continue across a
    switch, which happens on a keyframe), so a dump never mixes the layers' numbering.
    Idle while nobody records: the taps list is the router's, shared with every track."""

    def __init__(
        self,
        *,
        producer_id: str,
        kind: str,
        layers: int,
        clock_rate: int,
        ssrc: int,
        taps: list[Callable[[str, str, bytes], None]],
        request_keyframe: Callable[[int], None],
    ) -> None:
        self.producer_id = producer_id
        self.kind = kind
        self._taps = taps
        self.rewriter = native.Rewriter(
            ssrc=ssrc,
            rtx_ssrc=0,
            clock_rate=clock_rate,
            needs_keyframe=True,
            history_size=0,
            request_keyframe=self.request_keyframe,
        )
        self.rewriter.configure(pt_map={}, rtx_pt=None, ext=ExtensionWriter({}, None), sink=CallSink(self._send))
        self.switch = LayerSwitch(self.rewriter, layers, request_keyframe)
        self.switch.enabled = False

    def update(self, layers: list[LayerState], payload_types: list[int]) -> None:
        """Follow the best layer sending now; wake up or sleep with the recorder's taps."""
        self.switch.enabled = bool(self._taps)
        if not self.switch.enabled:
            if self.switch.current >= 0:
                self.switch.current = -1  # the next recording starts on a keyframe
                self.rewriter.resync()
            return
        self.rewriter.pt_map = {pt: pt for pt in payload_types}
        active = [i for i, layer in enumerate(layers) if layer.active]
        if active:
            self.switch.set_target(active[-1])

    def request_keyframe(self) -> None:
        self.switch.request_keyframe()

    def _send(self, packet: bytes) -> None:
        for tap in self._taps:
            tap(self.producer_id, self.kind, packet)
