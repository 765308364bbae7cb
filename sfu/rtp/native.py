"""Which forwarder and rewriter the SFU runs: the C ones (``sfu/rtp/_forwarder.pyx``,
``sfu/rtp/_rewriter.pyx``, built by ``pip install``) or their Python twins in ``forwarding.py``.

Here rather than in ``sfu/transport/fastio.py`` (which picks the packet I/O) so that the RTP
layer chooses its own classes without importing the transport. ``PEERLEARN_SFU_NATIVE=0``
switches both to pure Python (the tests run both ways).
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import TypeVar

from .arrivals import ArrivalLog
from .forwarding import RtpForwarder, RtpRewriter
from .sendlog import SendLog
from .twcc_decode import Decoded
from .twcc_decode import decode_feedback as decode_feedback_py

logger = logging.getLogger(__name__)

T = TypeVar("T")


def wanted() -> bool:
    """The native path unless ``PEERLEARN_SFU_NATIVE`` turns it off."""
    return os.environ.get("PEERLEARN_SFU_NATIVE", "1").lower() not in ("0", "false", "no", "off")


def _native_class(fallback: type[T], module: str, name: str, native: bool | None) -> type[T]:
    """``name`` from the native ``module`` when the native path is on and built, else ``fallback``
    (the Python class it behaves like)."""
    if native is None:
        native = wanted()
    if native:
        try:
            # the C rewriter cimports the native I/O's BatchSink: it fails to load whenever that does
            cls: type[T] = getattr(importlib.import_module(f"{__package__}.{module}"), name)
            return cls
        except ImportError as exc:
            logger.warning("native %s unavailable (%s): using the Python one", name, exc)
    return fallback


def rewriter_class(native: bool | None = None) -> type[RtpRewriter]:
    """``RtpRewriter`` in C (``sfu/rtp/_rewriter.pyx``) when the native path is on, else the Python one."""
    return _native_class(RtpRewriter, "_rewriter", "NativeRewriter", native)


def forwarder_class(native: bool | None = None) -> type[RtpForwarder]:
    """``RtpForwarder`` in C (``sfu/rtp/_forwarder.pyx``) when the native path is on, else the Python one."""
    return _native_class(RtpForwarder, "_forwarder", "NativeForwarder", native)


def arrival_log_class(native: bool | None = None) -> type[ArrivalLog]:
    """``ArrivalLog`` in C (``sfu/rtp/_arrivals.pyx``) when the native path is on, else the Python one."""
    return _native_class(ArrivalLog, "_arrivals", "NativeArrivalLog", native)


def send_log_class(native: bool | None = None) -> type[SendLog]:
    """``SendLog`` in C (``sfu/rtp/_sendlog.pyx``) when the native path is on, else the Python one."""
    return _native_class(SendLog, "_sendlog", "NativeSendLog", native)


def feedback_decoder(native: bool | None = None) -> Callable[[bytes], Decoded]:
    """Transport-wide feedback decoding in C (``sfu/rtp/_twcc_decode.pyx``) when the native path
    is on, else ``twcc_decode.decode_feedback``."""
    if native is None:
        native = wanted()
    if native:
        try:
            fn: Callable[[bytes], Decoded] = importlib.import_module(f"{__package__}._twcc_decode").decode_feedback
            return fn
        except ImportError as exc:
            logger.warning("native decode_feedback unavailable (%s): using the Python one", exc)
    return decode_feedback_py


#: what consumers build their rewriters from
Rewriter = rewriter_class()
#: what producers build their forwarders from
Forwarder = forwarder_class()
#: what TWCC feedback records publishers' packet arrivals in
Arrivals = arrival_log_class()
#: what a subscriber's transport numbers its packets with (transport-cc toward subscribers)
SendLogs = send_log_class()
#: what a subscriber's transport-wide feedback is decoded with
decode_feedback = feedback_decoder()
