"""Pages register themselves, as in Reflex's templates: `@route(path, title, *on_load)` above each page
function. Every page first resolves who is on the other end (`SessionState.load_session`)."""

from __future__ import annotations

from collections.abc import Callable

import reflex as rx

from clearbg_app.state.base import SessionState


def route(path: str, title: str, *on_load: Callable) -> Callable:
    """Register the decorated function as the page at `path`; `on_load` runs after the session check."""
    return rx.page(route=path, title=title, on_load=[SessionState.load_session, *on_load])
