"""One peer connection's Opus RED: what the client offered, what each side of it took.

``Peer`` keeps one of these. The SDP work is ``sfu.rtp.red_sdp``; this holds its state
across negotiations and tells producers and consumers which payload type is RED on their
m-section, so the forwarding path knows whom to pass RED to and for whom to unwrap it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional, Protocol

from ..rtp import red_sdp


class _RedConsumer(Protocol):
    red_pt: Optional[int]

    @property
    def mid(self) -> Optional[str]: ...

    @property
    def kind(self) -> str: ...

    def refresh(self) -> None: ...


class RedNegotiation:
    """RED on one client's connection; ``enabled=False`` (``SfuConfig.audio_red``) keeps
    every description free of it, as aiortc writes them."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        #: mid -> the RED the client listed there in its offers
        self.offered: dict[str, red_sdp.RedCodec] = {}

    def on_offer(self, sdp: str, consumers: Iterable[_RedConsumer]) -> None:
        """A client offer: note its RED; consumers on its m-sections get our answer's RED."""
        if not self.enabled:
            return
        found = red_sdp.parse(sdp)
        self.offered.update(found)
        self._apply(found, consumers)

    def on_answer(self, sdp: str, consumers: Iterable[_RedConsumer]) -> None:
        """The client's answer to our offer: which of our audio m-sections it takes RED on."""
        if self.enabled:
            self._apply(red_sdp.parse(sdp), consumers, every=True)

    def describe(self, sdp: str, *, answer: bool) -> str:
        """Our answer or re-offer as the client must see it (with RED) ."""
        if not self.enabled:
            return sdp
        preferred = next((c.pt for c in self.offered.values()), None)
        return red_sdp.accept(sdp, self.offered, answer=answer, preferred_pt=preferred)

    def producer_pt(self, mid: str) -> Optional[int]:
        """The RED payload type a publisher's m-section may carry (None: Opus only)."""
        codec = self.offered.get(mid) if self.enabled else None
        return codec.pt if codec is not None else None

    @staticmethod
    def _apply(found: dict[str, red_sdp.RedCodec], consumers: Iterable[_RedConsumer], every: bool = False) -> None:
        for consumer in consumers:
            mid = consumer.mid
            if consumer.kind != "audio" or mid is None or (not every and mid not in found):
                continue
            codec = found.get(mid)
            pt = codec.pt if codec is not None else None
            if pt != consumer.red_pt:
                consumer.red_pt = pt
                consumer.refresh()
