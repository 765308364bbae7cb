"""RTP of a stream the SDP named no SSRC for, routed by what its packets say of themselves.

A client that sends without ``a=ssrc`` lines (Firefox's simulcast, Chromium's with rids) is
known only by the MID header extension in its first packets, and a simulcast layer by its
rid (its retransmissions by the repaired-rid): the first such packet binds the SSRC to its
producer's (or layer's) forwarder on the transport, so later packets go there directly.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from ..rtp.header_extensions import find_extension
from .producer import Producer

_SSRC = struct.Struct("!I")

Route = Callable[[int, Callable[[bytes], Any]], None]


def route_by_mid(producers: Iterable[Producer], route: Route, data: bytes) -> None:
    """Find ``data``'s producer by its MID extension, bind its SSRC with ``route`` and forward it."""
    ssrc = _SSRC.unpack_from(data, 8)[0]
    b0 = data[0]
    off = 12 + (b0 & 0x0F) * 4
    if not b0 & 0x10 or off + 4 > len(data):
        return
    profile, words = struct.unpack_from("!HH", data, off)
    start, end = off + 4, off + 4 + 4 * words
    for producer in producers:
        if not producer.mid_ext_id:
            continue
        value = find_extension(data, start, end, profile, producer.mid_ext_id)
        if value is None or value.decode("ascii", "replace") != producer.mid:
            continue
        if producer.simulcast:
            _route_layer(producer, route, ssrc, data, start, end, profile)
            return
        pt = data[1] & 0x7F
        if pt in producer.forwarder.rtx_apt:
            producer.rtx_ssrc = ssrc
        else:
            producer.ssrc = ssrc
        route(ssrc, producer.forwarder.on_rtp)
        producer.forwarder.on_rtp(data)
        return


def _route_layer(producer: Producer, route: Route, ssrc: int, data: bytes, start: int, end: int, profile: int) -> None:
    # a simulcast layer names itself with the rid extension (its retransmissions with
    # the repaired-rid one) in its first packets; later ones carry only the SSRC
    rid = find_extension(data, start, end, profile, producer.rid_ext_id) if producer.rid_ext_id else None
    repaired = rid is None and producer.rrid_ext_id
    if repaired:
        rid = find_extension(data, start, end, profile, producer.rrid_ext_id)
    layer = producer.layer_of(rid.decode("ascii", "replace")) if rid is not None else None
    if layer is None:
        return  # unknown layer: wait for a packet that names it
    if not repaired:
        producer.learn_layer_ssrc(layer, ssrc)
    forwarder = producer.layers[layer]
    route(ssrc, forwarder.on_rtp)
    forwarder.on_rtp(data)
