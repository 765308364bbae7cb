"""The engine's error classes: bad arguments, lifecycle misuse, protocol errors."""

from __future__ import annotations


class InvalidStateError(Exception):
    """An operation was attempted on an object in the wrong state (e.g. closed)."""


class SignalingError(Exception):
    """A client message was refused; ``code`` is sent back in an ``error`` reply."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
