"""The admin editors of policy versions and subprocessors; every handler checks the role first
(`AdminBase._admin`, or `_as_admin` for the check-session-say pattern)."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, date, datetime

import reflex as rx

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import PolicyVersion
from clearbg_app.models.policies import POLICY_KINDS
from clearbg_app.services import policies, subprocessors
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.subprocessors import SubprocessorFields
from clearbg_app.state.admin import AdminBase
from clearbg_app.state.display import parse_uuid
from clearbg_app.state.policies import SubprocessorRow, VersionRow, subprocessor_row, version_row


def _date_field(raw: str) -> datetime | None:
    """A yyyy-mm-dd form value as midnight UTC; empty means none."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return datetime.combine(date.fromisoformat(raw), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise ServiceError("Give the effective date as a date, like 2027-01-31.") from None


class AdminPoliciesState(AdminBase):
    """`/admin/policies`: versions of both documents; a draft editor with preview, publish and discard.
    The editor keeps the revision it loaded: saving over someone else's newer save is refused."""

    policy_versions: list[VersionRow] = []
    edit_id: str = ""
    edit_kind: str = "privacy"
    edit_label: str = ""
    edit_body: str = ""
    edit_summary: str = ""
    edit_effective: str = ""
    edit_material: bool = False
    confirming_publish: bool = False  # the "email N account holders?" dialog is open
    publish_recipients: int = 0
    edit_status: str = ""
    edit_revision: int = 0
    edit_key: int = 0  # changes whenever the form must show new values
    editing: bool = False
    preview_html: str = ""

    def _forget(self) -> None:
        self.policy_versions, self.editing, self.preview_html, self.edit_body = [], False, "", ""

    def _list(self) -> None:
        now = utcnow()
        with session_scope() as session:
            self.policy_versions = [
                replace(version_row(version, now), title=policies.TITLES[version.kind])
                for kind in POLICY_KINDS
                for version in policies.all_versions(session, kind=kind)
            ]

    def _edit(self, version: PolicyVersion | None, *, kind: str = "privacy", label: str = "", body: str = "") -> None:
        self.editing = True
        self.edit_key += 1
        if version is None:
            self.edit_id, self.edit_kind, self.edit_label, self.edit_body = "", kind, label, body
            self.edit_summary, self.edit_effective, self.edit_material, self.edit_status, self.edit_revision = "", "", False, "new", 0
        else:
            self.edit_id, self.edit_kind, self.edit_label, self.edit_body = str(version.id), version.kind, version.label, version.body
            self.edit_summary, self.edit_material, self.edit_status = version.summary, version.material, version.status
            self.edit_revision = version.revision
            effective = as_utc(version.effective_at)
            self.edit_effective = effective.date().isoformat() if effective > utcnow() or version.is_published else ""
        self.preview_html = policies.render_markdown(self.edit_body)

    @rx.event
    def load(self):
        if self._admin("load /admin/policies") is None:
            return
        self.admin_notice, self.editing = "", False
        self._list()

    @rx.event
    def new_draft(self, kind: str):
        if self._admin("new policy draft") is None:
            return
        kind = kind if kind in POLICY_KINDS else "privacy"
        with session_scope() as session:
            current = policies.current_version(session, kind=kind, now=utcnow())
            label = policies.next_label(session, kind=kind)
        self._edit(None, kind=kind, label=label, body=current.body if current else "")
        self._say(f"A new {policies.TITLES[kind].lower()} draft, starting from the version in effect. Save it to keep it.", "info")

    @rx.event
    def open_version(self, version_id: str):
        target = parse_uuid(version_id)

        def found(session, admin) -> PolicyVersion:
            if target is None:
                raise NotFound("That version no longer exists.")
            return policies.get_version(session, version_id=target)

        done, version = self._as_admin("open policy version", found)
        if done:
            self.admin_notice = ""
            self._edit(version)

    @rx.event
    def save(self, form: dict):
        body = str(form.get("body", ""))
        fields = {
            "label": str(form.get("label", ""))[:64],
            "body": body,
            "summary": str(form.get("summary", ""))[:1000],
            "material": form.get("material") in ("on", True, "true"),
        }
        existing, edit_id, revision, kind = bool(self.edit_id), parse_uuid(self.edit_id), self.edit_revision, self.edit_kind

        def saved(session, admin) -> PolicyVersion:
            effective = _date_field(str(form.get("effective", "")))
            if existing:
                return policies.update_draft(session, admin=admin, version_id=edit_id, revision=revision, effective_at=effective, **fields)
            return policies.create_draft(session, admin=admin, kind=kind, effective_at=effective, **fields)

        done, version = self._as_admin("save policy draft", saved)
        if self.forbidden:
            return
        self.preview_html = policies.render_markdown(body)  # what was typed, saved or not
        if done and version is not None:
            self._edit(version)
            self._list()
            self._say(f"Draft {version.label} saved (revision {version.revision}).", "info")

    def _publish_or_discard(self, where: str, work, done: str) -> None:
        target = parse_uuid(self.edit_id)

        def worked(session, admin):
            if target is None:
                raise ServiceError("Save the draft first.")
            return work(session, admin, target)

        ran, version = self._as_admin(where, worked)
        if not ran:
            return
        self._list()
        if version is None:
            self.editing = False
        else:
            self._edit(version)
        self._say(done, "info")

    @rx.event
    def ask_publish(self):
        """A material change is confirmed first, with the number of account holders it emails; others publish at once."""
        admin = self._admin("confirm publishing")
        if admin is None:
            return
        target = parse_uuid(self.edit_id)
        if target is None or not self.edit_material:
            self.publish()
            return
        with session_scope() as session:
            self.publish_recipients = policies.notice_recipients(session, version_id=target)
        self.confirming_publish = True

    @rx.event
    def cancel_publish(self):
        if self._admin("cancel publishing") is not None:
            self.confirming_publish = False

    @rx.event
    def publish(self):
        self.confirming_publish = False
        revision = self.edit_revision
        self._publish_or_discard(
            "publish policy version",
            lambda session, admin, target: policies.publish(session, admin=admin, version_id=target, revision=revision),
            "Published. The version is frozen now; it takes effect on its effective date.",
        )

    @rx.event
    def discard(self):
        revision = self.edit_revision
        self._publish_or_discard(
            "discard policy draft",
            lambda session, admin, target: policies.discard_draft(session, admin=admin, version_id=target, revision=revision),
            "The draft is deleted.",
        )

    @rx.event
    def close_editor(self):
        if self._admin("close policy editor") is not None:
            self.editing = False


class AdminSubprocessorsState(AdminBase):
    """`/admin/subprocessors`: add, edit and retire entries (each change audited)."""

    entries: list[SubprocessorRow] = []
    sp_editing: bool = False
    sp: dict[str, str] = {}
    sp_key: int = 0

    def _forget(self) -> None:
        self.entries, self.sp, self.sp_editing = [], {}, False

    def _list(self) -> None:
        with session_scope() as session:
            self.entries = [subprocessor_row(row) for row in subprocessors.all_entries(session)]

    @rx.event
    def load(self):
        if self._admin("load /admin/subprocessors") is None:
            return
        self.admin_notice, self.sp_editing = "", False
        self._list()

    @rx.event
    def start_edit(self, entry_id: str):
        if self._admin("edit subprocessor") is None:
            return
        self.sp = next((asdict(row) for row in self.entries if row.id == entry_id), {}) if entry_id else {}
        self.sp_editing, self.sp_key = True, self.sp_key + 1

    @rx.event
    def save(self, form: dict):
        entry_id = parse_uuid(self.sp.get("id", ""))

        def saved(session, admin) -> str:
            since = _date_field(str(form.get("active_since", "")))
            fields = SubprocessorFields(
                name=str(form.get("name", ""))[:200], purpose=str(form.get("purpose", ""))[:3000],
                data_categories=str(form.get("data_categories", ""))[:3000], location=str(form.get("location", ""))[:200],
                transfer_safeguard=str(form.get("transfer_safeguard", ""))[:300], dpa_url=str(form.get("dpa_url", ""))[:600],
                active_since=since.date() if since else None, used_for=str(form["used_for"])[:40] if "used_for" in form else None,
            )  # fmt: skip
            if entry_id:
                subprocessors.edit(session, admin=admin, entry_id=entry_id, fields=fields)
            else:
                subprocessors.add(session, admin=admin, fields=fields)
            return fields.name.strip()

        done, name = self._as_admin("save subprocessor", saved)
        if not done:
            return
        self.sp_editing = False
        self._list()
        self._say(f"{name} saved; the public list shows the change.", "info")

    @rx.event
    def retire(self, entry_id: str):
        target = parse_uuid(entry_id)

        def retired(session, admin) -> str:
            if target is None:
                raise NotFound("That subprocessor no longer exists.")
            return subprocessors.retire(session, admin=admin, entry_id=target).name

        done, name = self._as_admin("retire subprocessor", retired)
        if done:
            self._list()
            self._say(f"{name} is retired from today; the public list shows it under changes.", "info")

    @rx.event
    def cancel(self):
        if self._admin("cancel subprocessor edit") is not None:
            self.sp_editing = False
