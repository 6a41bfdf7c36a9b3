"""Which privacy-policy and terms versions are in effect."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from clearbg_app.models import PolicyVersion


def current_label(session: Session, *, kind: str, now: datetime) -> str:
    """The label of the `kind` ("privacy" or "terms") version in effect at `now`."""
    version = session.exec(
        select(PolicyVersion)
        .where(PolicyVersion.kind == kind, col(PolicyVersion.effective_at) <= now)
        .order_by(col(PolicyVersion.effective_at).desc())
    ).first()
    if version is None:
        raise LookupError(f"No {kind} version is in effect; run the migrations.")
    return version.label
