"""The live WebRTC sessions of a server: opening one from an offer, finding one by WHIP id, ending all."""

import asyncio
from collections.abc import Iterator

from engine.server.auth import ANONYMOUS, Grant
from engine.server.context import EngineContext
from engine.server.memory import MemoryTrimmer
from engine.server.offer import check_offer
from engine.server.webrtc import WebRTCSession


class SessionRegistry:
    """The live WebRTC sessions of a server, by WHIP resource id; memory is handed back as they end."""

    def __init__(self) -> None:
        self._sessions: dict[str, WebRTCSession] = {}
        self._trimmer = MemoryTrimmer()

    def __len__(self) -> int:
        return len(self._sessions)

    def __iter__(self) -> Iterator[WebRTCSession]:
        """The sessions live now (a snapshot: ending sessions leave the registry)."""
        return iter(list(self._sessions.values()))

    def get(self, resource_id: str) -> WebRTCSession | None:
        return self._sessions.get(resource_id)

    def add(self, session: WebRTCSession) -> None:
        self._sessions[session.resource_id] = session

    def remove(self, session: WebRTCSession) -> None:
        self._sessions.pop(session.resource_id, None)
        self._trimmer.soon()

    async def close_all(self, reason: str) -> None:
        """End every session and wait until each has released its slot."""
        await asyncio.gather(*(session.close(reason) for session in self), return_exceptions=True)


async def open_session(
    context: EngineContext,
    registry: SessionRegistry,
    offer_sdp: str,
    *,
    voice: bool = False,
    grant: Grant = ANONYMOUS,
    address: str = "unknown",
) -> tuple[WebRTCSession, str]:
    """Take a session slot, answer ``offer_sdp`` and start serving; returns the session and the answer SDP.

    Until its connection is established (ICE and DTLS, within ``ice_timeout_s``)
    the session counts as pending for ``address``: a client cannot hold many
    slots with offers it never connects.

    Raises:
        TooManyPending: ``address`` (or everyone) has too many sessions not yet connected (HTTP 429).
        HolderLimitError: the token already holds its ``max_sessions`` (HTTP 429).
        SessionLimitError: every slot is taken (HTTP 503).
        OfferError: the offer cannot start a session (HTTP 400); the slot is released.
    """
    check_offer(offer_sdp)  # a malformed offer is refused as such, even when the server is full
    pending = context.gate.pending
    pending.acquire(address)
    released = False

    def connected() -> None:
        nonlocal released
        if not released:
            released = True
            pending.release(address)

    try:
        session_id = context.slots.acquire("webrtc", holder=grant.holder, holder_limit=grant.max_sessions)
    except BaseException:
        connected()
        raise

    def closed(session: WebRTCSession) -> None:
        connected()
        registry.remove(session)

    session = WebRTCSession(context, session_id, voice=voice, on_connected=connected, on_closed=closed)
    registry.add(session)
    try:
        answer = await session.accept(offer_sdp)
    except BaseException:
        await asyncio.shield(session.close("the offer was refused"))
        raise
    return session, answer
