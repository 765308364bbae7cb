"""Which database errors mean "unreachable, try again" (503 with Retry-After) and which do not."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from api.errors import database_unavailable, database_unavailable_error


class DriverError(Exception):
    """What SQLAlchemy's asyncpg adapter raises: the server's SQLSTATE as ``pgcode``."""

    def __init__(self, pgcode: str) -> None:
        super().__init__(pgcode)
        self.pgcode = pgcode


def wrapped(pgcode: str) -> DBAPIError:
    return DBAPIError("SELECT 1", {}, DriverError(pgcode))


def test_a_server_going_away_or_coming_back_is_unavailable() -> None:
    assert database_unavailable(ConnectionRefusedError(111, "Connection refused"))  # restarting: nobody listens
    assert database_unavailable(wrapped("57P01"))  # terminating connection due to administrator command
    assert database_unavailable(wrapped("57P03"))  # the database system is starting up
    assert database_unavailable(wrapped("08006"))  # connection failure
    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("gone")))
    assert database_unavailable(PoolTimeout("QueuePool limit reached"))
    assert database_unavailable(TimeoutError())


def test_a_wrong_request_is_not_unavailable() -> None:
    assert not database_unavailable(IntegrityError("INSERT", {}, DriverError("23505")))  # unique violation: 409
    assert not database_unavailable(wrapped("22003"))  # numeric out of range
    assert not database_unavailable(ValueError("bad"))


def test_the_answer_asks_to_retry() -> None:
    err = database_unavailable_error()
    assert err.status == 503 and err.headers == {"Retry-After": "2"}
