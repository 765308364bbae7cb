"""Which SRTP protection profile a DTLS-SRTP handshake chose.

aiortc negotiates the profile (AEAD_AES_256_GCM, AEAD_AES_128_GCM or AES128_CM_HMAC_SHA1_80,
in its order of preference) but keeps it inside ``RTCDtlsTransport._ssl``, a private
attribute, and only logs it. The benchmarks state it next to their figures (SRTP is a
large share of a forwarded packet's cost, and GCM and CM+HMAC differ), so it is read here,
beside ``aiortc_bridge``, the other module allowed to touch aiortc's private parts.
``check_compatibility()`` fails loudly when an aiortc upgrade moves it.
"""

from __future__ import annotations

from typing import Optional

from aiortc import RTCDtlsTransport

#: the private names read here (``tests/sfu/test_dtls_profile.py`` checks them on a live transport)
REQUIRED = ("_ssl",)


def srtp_profile(dtls: RTCDtlsTransport) -> Optional[str]:
    """The profile's name as OpenSSL spells it (``SRTP_AEAD_AES_128_GCM``...), or None before
    the handshake completed."""
    ssl = getattr(dtls, "_ssl", None)
    if ssl is None or dtls.state != "connected":
        return None
    chosen = ssl.get_selected_srtp_profile()
    return chosen.decode() if chosen else None


def check_compatibility(dtls: RTCDtlsTransport) -> None:
    """Raise if aiortc no longer keeps what ``srtp_profile`` reads (checked on an instance:
    the attribute is set in ``__init__``)."""
    missing = [name for name in REQUIRED if not hasattr(dtls, name)]
    if missing:
        raise RuntimeError(f"aiortc's RTCDtlsTransport lacks {missing}: update sfu/transport/dtls_profile.py")
