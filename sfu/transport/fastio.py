"""Which packet I/O the SFU runs: the native module (``sfu/transport/_fastio.pyx``, built by
``pip install``) or its pure-Python twin (``sfu/transport/fastio_py.py``).

``PEERLEARN_SFU_NATIVE=0`` forces the pure-Python one (the tests run both); a
missing or unloadable native build falls back to it with a warning in the log. The C
forwarder and rewriter are picked by ``sfu/rtp/native.py``, which owns that switch.
"""

from __future__ import annotations

import logging
from types import ModuleType

from ..rtp.native import wanted
from . import fastio_py

logger = logging.getLogger(__name__)


def load(native: bool | None = None) -> ModuleType:
    """The implementation module: ``native`` None means "as configured"."""
    if native is None:
        native = wanted()
    if native:
        try:
            from . import _fastio  # type: ignore[attr-defined]

            native_module: ModuleType = _fastio
            return native_module
        except ImportError as exc:
            logger.warning("native SFU I/O unavailable (%s): using the pure-Python path", exc)
    return fastio_py


impl = load()
SrtpContext = impl.SrtpContext
SendBatch = impl.SendBatch
Receiver = impl.Receiver
Destination = impl.Destination
BatchSink = impl.BatchSink
Ingress = impl.Ingress
IngressRoute = impl.IngressRoute
NATIVE: bool = impl.NATIVE
