"""The resources a service needs, passed as one argument (never a request object)."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from api.broker import MemoryBroker
from api.db import Database
from api.keys import BROKER, DB, MAILER, SETTINGS
from api.mailer import Mailer
from api.settings import Settings


@dataclass(frozen=True)
class Context:
    db: Database
    broker: MemoryBroker
    mailer: Mailer
    settings: Settings

    @classmethod
    def of(cls, app: web.Application) -> "Context":
        return cls(app[DB], app[BROKER], app[MAILER], app[SETTINGS])
