"""Policy and subprocessor states of the public pages and the material-change banner (the admin
editors are `state/admin_policies.py`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import reflex as rx

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import PolicyVersion, Subprocessor
from clearbg_app.models.policies import POLICY_KINDS
from clearbg_app.services import policies, subprocessors
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.state.base import SessionState
from clearbg_app.state.display import parse_uuid


def day(moment) -> str:
    return f"{as_utc(moment):%d %B %Y}".lstrip("0") if moment else ""


@dataclass(frozen=True)
class VersionRow:
    """A policy version in a list: the public version lists, the banner's notices, the admin editor."""

    id: str
    kind: str
    label: str
    status: str
    when: str
    summary: str
    material: str  # "material change" or ""
    href: str
    title: str = ""  # the document's title (the admin list)
    doc: str = ""  # the document, in a sentence (the banner)
    path: str = ""  # the document's page (the banner)


def version_row(version: PolicyVersion, now: datetime) -> VersionRow:
    effective = as_utc(version.effective_at)
    if not version.is_published:
        when = f"planned for {day(effective)}" if effective > now else "takes effect when published"
    else:
        when = f"{'in effect since' if effective <= now else 'takes effect on'} {day(effective)}"
    return VersionRow(
        id=str(version.id),
        kind=version.kind,
        label=version.label,
        status=version.status,
        when=when,
        summary=version.summary,
        material="material change" if version.material else "",
        href=f"{policies.PATHS[version.kind]}/versions/{version.label}",
    )


class LegalState(SessionState):
    """`/privacy`, `/terms`, their version lists and single versions, read from the URL's path."""

    doc_title: str = ""
    doc_label: str = ""
    doc_when: str = ""
    doc_summary: str = ""
    doc_html: str = ""
    doc_missing: str = ""
    doc_is_current: bool = True
    versions_href: str = ""
    current_href: str = ""
    versions: list[VersionRow] = []

    @rx.event
    def load(self):
        parts = [part for part in self.router.url.path.split("/") if part]
        kind = parts[0] if parts and parts[0] in POLICY_KINDS else "privacy"
        label = parts[2] if len(parts) > 2 else None
        now = utcnow()
        self.doc_title = policies.TITLES[kind]
        self.versions_href, self.current_href = f"{policies.PATHS[kind]}/versions", policies.PATHS[kind]
        with session_scope() as session:
            self.versions = [version_row(version, now) for version in policies.published_versions(session, kind=kind)]
            current = policies.current_version(session, kind=kind, now=now)
            try:
                shown = policies.published_version(session, kind=kind, label=label) if label else current
            except NotFound as missing:
                shown, self.doc_missing = None, str(missing)
        if shown is None:
            self.doc_label = self.doc_when = self.doc_summary = self.doc_html = ""
            return
        self.doc_missing = ""
        self.doc_label, self.doc_summary = shown.label, shown.summary
        self.doc_when = version_row(shown, now).when
        self.doc_is_current = current is not None and shown.id == current.id
        self.doc_html = policies.render_markdown(shown.body)


class PolicyBannerState(SessionState):
    """Material changes in effect that the signed-in user has not acknowledged yet."""

    notices: list[VersionRow] = []

    def _refresh(self, user) -> None:
        now = utcnow()
        with session_scope() as session:
            pending = policies.pending_notices(session, user=user, now=now) if user else []
        self.notices = [
            replace(version_row(version, now), doc=policies.TITLES[version.kind].lower(), path=policies.PATHS[version.kind])
            for version in pending
        ]

    @rx.event
    def load(self):
        self._refresh(self._current_user())

    @rx.event
    def acknowledge(self, version_id: str):
        user = self._current_user()
        target = parse_uuid(version_id)
        if user is not None and target is not None:
            try:
                with session_scope() as session:
                    policies.acknowledge(session, user=user, version_id=target)
            except ServiceError:
                pass
        self._refresh(user)


# Subprocessors --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubprocessorRow:
    """A subprocessor as the public list and the admin editor show it."""

    id: str
    name: str
    purpose: str
    data_categories: str
    location: str
    transfer_safeguard: str
    dpa_url: str
    active_since: str
    active_until: str
    placeholder: str  # "yes" for an example entry the operator has not replaced
    changed: str
    used_for: str
    in_use: str  # "yes" when the feature it serves is on
    use_note: str


def subprocessor_row(row: Subprocessor) -> SubprocessorRow:
    return SubprocessorRow(
        id=str(row.id),
        name=row.name,
        purpose=row.purpose,
        data_categories=row.data_categories,
        location=row.location,
        transfer_safeguard=row.transfer_safeguard,
        dpa_url=row.dpa_url,
        active_since=row.active_since.isoformat(),
        active_until=row.active_until.isoformat() if row.active_until else "",
        placeholder="yes" if row.placeholder else "",
        changed=day(row.updated_at),
        used_for=row.used_for,
        in_use="yes" if subprocessors.in_use(row) else "",
        use_note=subprocessors.use_note(row),
    )


class SubprocessorsState(SessionState):
    """`/subprocessors`: who processes personal data for the operator, and recent changes."""

    active_subprocessors: list[SubprocessorRow] = []
    retired_subprocessors: list[SubprocessorRow] = []
    list_changed: str = ""

    @rx.event
    def load(self):
        today = utcnow().date()
        with session_scope() as session:
            active = sorted(subprocessors.active(session, today=today), key=lambda row: not subprocessors.in_use(row))  # in use first
            self.active_subprocessors = [subprocessor_row(row) for row in active]
            self.retired_subprocessors = [subprocessor_row(row) for row in subprocessors.retired(session, today=today)]
            self.list_changed = day(subprocessors.last_change(session))
