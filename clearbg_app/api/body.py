"""Request bodies read with a byte cap, for every route that reads one: refused from the declared
`Content-Length` before a byte is read, and cut off as soon as what arrives passes the cap (a
client may send more than it declared, or declare nothing)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import Message, Receive

FORM_LIMIT = 64 * 1024  # the sign-in, account and privacy forms: a few short fields


class BodyTooLarge(Exception):
    """The body is over its cap (declared, or as it arrived)."""


def check_declared(headers: Mapping[str, str], limit: int) -> None:
    """`BodyTooLarge` when `Content-Length` is over `limit`, or is not a plain number."""
    declared = headers.get("content-length")
    if declared is not None and not (declared.isascii() and declared.isdigit() and int(declared) <= limit):
        raise BodyTooLarge


def capped_receive(receive: Receive, limit: int) -> Receive:
    """`receive`, raising `BodyTooLarge` once the body passes `limit` bytes."""
    received = 0

    async def counting() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise BodyTooLarge
        return message

    return counting


def capped(request: Request, limit: int) -> Request:
    """The request, checked against its declared length, with a body that stops at `limit` bytes."""
    check_declared(request.headers, limit)
    return Request(request.scope, capped_receive(request.receive, limit))


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, at most `limit` bytes (`BodyTooLarge` past it)."""
    return await capped(request, limit).body()
