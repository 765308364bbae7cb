"""ICE restart on a live peer connection: new credentials, new checks, same DTLS and SRTP.

The page leads (JSEP 4.1.3, ``restartIce()``): when its connection goes ``disconnected`` it
offers again with a fresh ufrag/pwd over the signaling socket, which outlives a media outage
(TCP, another port). The server answers that offer on the SAME peer connection: new local
credentials, the page's new ones, the connectivity checks start over, and the DTLS session,
its SRTP keys and every producer and consumer stay, so nothing is renegotiated but ICE. The
server never starts a restart itself: it is the controlled ICE agent with host candidates that
never change, the page is the side whose network moved (only it can gather its new
candidates), and a server offer during an outage would only collide with the page's (glare).
If the page never comes back, the checks give up after ``RestartPolicy.timeout`` (as consent
freshness would, RFC 7675) and the connection closes: the page then rejoins.

aioice has no restart path (its ``Connection`` runs its checks once, in ``connect()``), so this
module, like ``aiortc_bridge``, reaches into aioice's and aiortc's private state, pinned to the
versions in ``PINNED`` with every name listed in ``REQUIRED``; ``check_compatibility()`` (run by
``tests/sfu/test_ice_restart.py``) fails loudly when an upgrade moves one of them.

What a restart does to the aioice ``Connection`` (RFC 8445 section 9):

- new local ufrag/pwd (and the shared UDP port learns the new ufrag: ``on_ufrag``), the
  offer's remote ones; the check list and remote candidates start empty, so the offer's
  candidates (the same addresses, often) are paired again instead of ignored as known;
- the nominated pair stays until a new one is nominated: aiortc's DTLS transport reads and
  writes through it (an empty ``_nominated`` makes its receive loop end the connection), and
  media keeps flowing on it if the old path still works;
- aioice's own pacing stopped with its first ``connect()``: our task paces the new checks (one
  every 20 ms) and, unlike a STUN transaction's doubling timeout (0.5, 1, 2, 4, 8 s ...), asks
  again every ``retry`` seconds while the network is down, so the first check after it returns
  goes out within ``retry``, as browsers do;
- once the page nominates a new pair, ``on_new_path`` (``MediaTransport.repath``) moves the
  SRTP egress to it (the page's new candidates have new ports) and consent freshness restarts.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import aioice
import aioice.ice
import aiortc
from aioice import Connection
from aioice.utils import random_string
from aiortc import RTCPeerConnection
from aiortc.rtcicetransport import RTCIceGatherer

from . import aiortc_bridge as bridge

logger = logging.getLogger(__name__)

#: the versions whose private shape this module was written against (major.minor)
PINNED = {"aioice": "0.13.", "aiortc": "1.16."}

#: (object, attribute) pairs this module depends on; instance attributes are checked on an instance
REQUIRED: list[tuple[Any, str]] = [
    (Connection, "_local_username"),
    (Connection, "_local_password"),
    (Connection, "_check_list"),
    (Connection, "_nominated"),
    (Connection, "_nominating"),
    (Connection, "_remote_candidates"),
    (Connection, "_remote_candidates_end"),
    (Connection, "_query_consent_task"),
    (Connection, "_closing"),
    (Connection, "_components"),
    (Connection, "query_consent"),
    (Connection, "check_start_task"),
    (Connection, "check_state"),
    (Connection, "sort_check_list"),
    (RTCIceGatherer, "_remote_candidates_end"),
    (aioice.ice.CandidatePair, "task"),
    (aioice.ice.CandidatePair.State, "WAITING"),
    (aioice.ice.CandidatePair.State, "FROZEN"),
    (aioice.ice.CandidatePair.State, "IN_PROGRESS"),
    (aioice.ice.CandidatePair.State, "FAILED"),
]

_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)\s*$", re.M)
_PWD = re.compile(r"^a=ice-pwd:(\S+)\s*$", re.M)
# RFC 8839 section 5.4: ice-char = ALPHA / DIGIT / "+" / "/"
_ICE_CHARS = re.compile(r"^[A-Za-z0-9+/]+$")

_State = aioice.ice.CandidatePair.State


@dataclass(frozen=True)
class IceCredentials:
    """One side's ICE username fragment and password (RFC 8839 section 5.4)."""

    ufrag: str
    pwd: str

    def __post_init__(self) -> None:
        if not (4 <= len(self.ufrag) <= 256 and _ICE_CHARS.match(self.ufrag)):
            raise ValueError("ice-ufrag must be 4-256 ice-chars")
        if not (22 <= len(self.pwd) <= 256 and _ICE_CHARS.match(self.pwd)):
            raise ValueError("ice-pwd must be 22-256 ice-chars")

    @classmethod
    def generate(cls) -> IceCredentials:
        # 8 characters, not aioice's 4: the shared UDP port routes checks by our ufrag, and
        # every restart adds one more to tell apart
        return cls(random_string(8), random_string(22))


def offered_credentials(sdp: str) -> Optional[IceCredentials]:
    """The ICE credentials an SDP carries (the first ufrag/pwd: one transport under BUNDLE)."""
    ufrag, pwd = _UFRAG.search(sdp), _PWD.search(sdp)
    if ufrag is None or pwd is None:
        return None
    try:
        return IceCredentials(ufrag.group(1), pwd.group(1))
    except ValueError:
        return None


@dataclass(frozen=True)
class RestartPolicy:
    """How long and how often the server checks after a restart (seconds)."""

    #: give up (close the connection, so the page rejoins) when no new pair is nominated by then
    timeout: float = 30.0
    #: a check unanswered this long is sent again (a blackout would otherwise back it off to 8 s)
    retry: float = 0.5
    #: pacing of new checks (RFC 8445 Ta)
    tick: float = 0.02
    #: only the best this many pairs are asked again: a client listing hundreds of candidates
    #: must not turn the server into a steady STUN source toward them (the others get aioice's
    #: single check with its retransmissions, as on a first connect)
    max_retried_pairs: int = 8


def check_compatibility() -> None:
    """Raise AssertionError naming every private detail (or version) that moved."""
    problems = [
        f"{name} {module.__version__} (written for {PINNED[name]}x)"
        for name, module in (("aioice", aioice), ("aiortc", aiortc))
        if not module.__version__.startswith(PINNED[name])
    ]
    loop = asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        pc = RTCPeerConnection()
        pc.addTransceiver("audio")
        connection = bridge.ice_connections(pc)[0]
        candidate = aioice.Candidate(
            foundation="x", component=1, transport="udp", priority=1, host="192.0.2.1", port=9, type="host"
        )
        instances: dict[Any, Any] = {
            Connection: connection,
            RTCIceGatherer: _gatherers(pc)[0],
            aioice.ice.CandidatePair: aioice.ice.CandidatePair(aioice.ice.StunProtocol(connection), candidate),
        }
        for owner, name in REQUIRED:
            if not hasattr(instances.get(owner, owner), name):
                problems.append(f"{getattr(owner, '__name__', owner)}.{name}")
        loop.run_until_complete(pc.close())
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    if problems:
        raise AssertionError("aioice/aiortc private API changed (sfu/transport/ice_restart.py): " + ", ".join(problems))


@dataclass
class _Checks:
    """One restart in progress: the pair it replaces and when each check went out."""

    old: set[int]
    task: Optional[asyncio.Task[None]] = None
    sent_at: dict[int, float] = field(default_factory=dict)


class IceRestart:
    """The ICE restarts of one server-side peer connection (see the module docstring).

    ``restart_if_offered(offer_sdp)`` before the offer is applied (our answer then carries the
    new local credentials); ``on_new_path()`` when the page nominated a pair of the new generation;
    ``on_ufrag(old, new)`` when our local ufrag changes (the shared UDP port routes by it).
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        on_new_path: Callable[[], object],
        on_ufrag: Callable[[str, str], None],
        policy: RestartPolicy = RestartPolicy(),
    ) -> None:
        self._pc = pc
        self._on_new_path = on_new_path
        self._on_ufrag = on_ufrag
        self.policy = policy
        self._checks: Optional[_Checks] = None
        #: restarts asked for by the page / completed with a new nominated pair / given up
        self.requested = 0
        self.completed = 0
        self.failed = 0

    @property
    def in_progress(self) -> bool:
        return self._checks is not None

    def restart_if_offered(self, offer_sdp: str) -> bool:
        """If ``offer_sdp`` restarts ICE (new remote credentials on a connection that has
        some), start a new generation of checks and return True; else change nothing.

        The offer's candidates are paired as aiortc applies it, and the checks go out as they
        are; our new credentials are in whatever answer aiortc makes next."""
        connection = self._connection()
        offered = self._changed_remote(connection, offer_sdp)
        if connection is None or offered is None:
            return False
        self.requested += 1
        self._renew_local(connection)
        self._begin(connection, offered)
        return True

    def renew_local_credentials(self) -> Optional[IceCredentials]:
        """The offering side of a restart (an aiortc client, or a server that would lead one):
        new local credentials, which the next ``createOffer()`` carries; the checks start with
        ``restart_if_answered``. None when the connection is closed."""
        connection = self._connection()
        if connection is None or connection._closing:
            return None
        self.requested += 1
        return self._renew_local(connection)

    def restart_if_answered(self, answer_sdp: str) -> bool:
        """After ``renew_local_credentials``: the answer's new remote credentials start the checks."""
        connection = self._connection()
        answered = self._changed_remote(connection, answer_sdp)
        if connection is None or answered is None:
            return False
        self._begin(connection, answered)
        return True

    async def stop(self) -> None:
        task = self._stop_checks()
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------ private

    def _connection(self) -> Optional[Connection]:
        connections = bridge.ice_connections(self._pc)
        return connections[0] if connections else None

    def _changed_remote(self, connection: Optional[Connection], sdp: str) -> Optional[IceCredentials]:
        """The credentials in ``sdp`` if they are new for a connection that has some."""
        offered = offered_credentials(sdp)
        if offered is None or connection is None or connection._closing:
            return None
        current = (connection.remote_username, connection.remote_password)
        if None in current or current == (offered.ufrag, offered.pwd):
            return None  # the first description, or a renegotiation that keeps ICE as it is
        return offered

    def _renew_local(self, connection: Connection) -> IceCredentials:
        self._stop_checks()
        consent = connection._query_consent_task
        if consent is not None:
            consent.cancel()  # it would check (and expire) on the old credentials
            connection._query_consent_task = None
        old_ufrag = connection.local_username
        local = IceCredentials.generate()
        connection._local_username, connection._local_password = local.ufrag, local.pwd
        self._on_ufrag(old_ufrag, local.ufrag)
        logger.info("ICE restart: local ufrag %s -> %s", old_ufrag, local.ufrag)
        return local

    def _begin(self, connection: Connection, remote: IceCredentials) -> None:
        """A new generation of checks against ``remote``: the nominated pair stays (see the
        module docstring), the rest starts empty."""
        self._stop_checks()
        for pair in connection._check_list:
            if pair.task is not None:
                pair.task.cancel()
        connection._check_list = []
        connection._nominating = set()
        connection._remote_candidates = []
        connection._remote_candidates_end = False
        for gatherer in _gatherers(self._pc):
            gatherer._remote_candidates_end = False
        connection.remote_username, connection.remote_password = remote.ufrag, remote.pwd
        checks = self._checks = _Checks(old={id(p) for p in connection._nominated.values()})
        checks.task = asyncio.ensure_future(self._run(checks))

    def _stop_checks(self) -> Optional[asyncio.Task[None]]:
        checks, self._checks = self._checks, None
        if checks is None or checks.task is None:
            return None
        checks.task.cancel()
        return checks.task

    async def _run(self, checks: _Checks) -> None:
        connection = self._connection()
        if connection is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.timeout
        try:
            while not connection._closing:
                if any(id(p) not in checks.old for p in connection._nominated.values()):
                    self._done(connection, checks)
                    return
                now = loop.time()
                if now >= deadline:
                    self.failed += 1
                    logger.info("ICE restart: no new pair in %.0f s, closing", self.policy.timeout)
                    if self._checks is checks:
                        self._checks = None
                    await connection.close()  # as an expired consent would: the page rejoins
                    return
                self._pace(connection, checks, now)
                await asyncio.sleep(self.policy.tick)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("ICE restart failed")

    def _pace(self, connection: Connection, checks: _Checks, now: float) -> None:
        """Ask again what went unanswered for ``retry`` s, then start the best waiting check."""
        for pair in connection._check_list[: self.policy.max_retried_pairs]:  # sorted best first
            key = id(pair)
            if pair.state == _State.IN_PROGRESS:
                sent = checks.sent_at.setdefault(key, now)  # also a check the page's triggered
                if now - sent < self.policy.retry:
                    continue
            elif pair.state != _State.FAILED:
                continue
            elif now - checks.sent_at.get(key, 0.0) < self.policy.retry:
                continue
            # unanswered (a STUN transaction backs off to seconds) or failed (timed out, or the
            # page had not applied our answer yet): send a fresh check while the restart lasts
            if pair.task is not None:
                pair.task.cancel()
                pair.task = None
            connection.check_state(pair, _State.WAITING)
            checks.sent_at.pop(key, None)
        for state in (_State.WAITING, _State.FROZEN):
            ready = next((p for p in connection._check_list if p.state == state), None)
            if ready is not None:
                checks.sent_at[id(ready)] = now
                connection.check_start_task(ready)
                return

    def _done(self, connection: Connection, checks: _Checks) -> None:
        if self._checks is checks:
            self._checks = None
        self.completed += 1
        logger.info("ICE restart completed: %s", list(connection._nominated.values()))
        try:
            self._on_new_path()
        finally:
            # consent freshness again, on the new credentials (a restart during the first
            # connect() leaves that to connect(), which starts it when it completes)
            if checks.old and connection._query_consent_task is None:
                connection._query_consent_task = asyncio.ensure_future(connection.query_consent())


def _gatherers(pc: RTCPeerConnection) -> list[RTCIceGatherer]:
    return [dtls.transport.iceGatherer for dtls in bridge.dtls_transports(pc)]
