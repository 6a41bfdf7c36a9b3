"""Policy and subprocessor states: the public pages, the material-change banner, and the admin
editors (which check the role in every handler, see `AdminBase`)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import reflex as rx

from clearbg_app.clock import as_utc, utcnow
from clearbg_app.db import session_scope
from clearbg_app.models import PolicyVersion, Subprocessor
from clearbg_app.models.policies import POLICY_KINDS
from clearbg_app.services import policies, subprocessors
from clearbg_app.services.errors import NotFound, ServiceError
from clearbg_app.services.subprocessors import SubprocessorFields
from clearbg_app.state.admin import AdminBase
from clearbg_app.state.base import SessionState
from clearbg_app.state.display import parse_uuid


def _day(moment) -> str:
    return f"{as_utc(moment):%d %B %Y}".lstrip("0") if moment else ""


def _version_row(version: PolicyVersion, now: datetime) -> dict[str, str]:
    effective = as_utc(version.effective_at)
    if not version.is_published:
        when = f"planned for {_day(effective)}" if effective > now else "takes effect when published"
    else:
        when = f"{'in effect since' if effective <= now else 'takes effect on'} {_day(effective)}"
    return {
        "id": str(version.id),
        "kind": version.kind,
        "label": version.label,
        "status": version.status,
        "when": when,
        "summary": version.summary,
        "material": "material change" if version.material else "",
        "href": f"{policies.PATHS[version.kind]}/versions/{version.label}",
    }


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
    versions: list[dict[str, str]] = []

    @rx.event
    def load(self):
        parts = [part for part in self.router.url.path.split("/") if part]
        kind = parts[0] if parts and parts[0] in POLICY_KINDS else "privacy"
        label = parts[2] if len(parts) > 2 else None
        now = utcnow()
        self.doc_title = policies.TITLES[kind]
        self.versions_href, self.current_href = f"{policies.PATHS[kind]}/versions", policies.PATHS[kind]
        with session_scope() as session:
            self.versions = [_version_row(version, now) for version in policies.published_versions(session, kind=kind)]
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
        self.doc_when = _version_row(shown, now)["when"]
        self.doc_is_current = current is not None and shown.id == current.id
        self.doc_html = policies.render_markdown(shown.body)


class PolicyBannerState(SessionState):
    """Material changes in effect that the signed-in user has not acknowledged yet."""

    notices: list[dict[str, str]] = []

    def _refresh(self, user) -> None:
        now = utcnow()
        with session_scope() as session:
            pending = policies.pending_notices(session, user=user, now=now) if user else []
        self.notices = [
            {**_version_row(version, now), "doc": policies.TITLES[version.kind].lower(), "path": policies.PATHS[version.kind]}
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

    policy_versions: list[dict[str, str]] = []
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
                {**_version_row(version, now), "title": policies.TITLES[version.kind]}
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
        if self._admin("open policy version") is None:
            return
        target = parse_uuid(version_id)
        try:
            with session_scope() as session:
                if target is None:
                    raise NotFound("That version no longer exists.")
                version = policies.get_version(session, version_id=target)
        except ServiceError as error:
            self._say(str(error))
            return
        self.admin_notice = ""
        self._edit(version)

    @rx.event
    def save(self, form: dict):
        admin = self._admin("save policy draft")
        if admin is None:
            return
        body = str(form.get("body", ""))
        fields = {
            "label": str(form.get("label", ""))[:64],
            "body": body,
            "summary": str(form.get("summary", ""))[:1000],
            "material": form.get("material") in ("on", True, "true"),
        }
        self.preview_html = policies.render_markdown(body)
        try:
            effective = _date_field(str(form.get("effective", "")))
            with session_scope() as session:
                if self.edit_id:
                    version = policies.update_draft(session, admin=admin, version_id=parse_uuid(self.edit_id), revision=self.edit_revision,
                                                    effective_at=effective, **fields)  # fmt: skip
                else:
                    version = policies.create_draft(session, admin=admin, kind=self.edit_kind, effective_at=effective, **fields)
        except ServiceError as error:
            self._say(str(error))
            return
        self._edit(version)
        self._list()
        self._say(f"Draft {version.label} saved (revision {version.revision}).", "info")

    def _publish_or_discard(self, where: str, work, done: str) -> None:
        admin = self._admin(where)
        if admin is None:
            return
        target = parse_uuid(self.edit_id)
        if target is None:
            self._say("Save the draft first.")
            return
        try:
            with session_scope() as session:
                version = work(session, admin, target)
        except ServiceError as error:
            self._say(str(error))
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


# Subprocessors --------------------------------------------------------------------------------------------


def _subprocessor_row(row: Subprocessor) -> dict[str, str]:
    return {
        "id": str(row.id),
        "name": row.name,
        "purpose": row.purpose,
        "data_categories": row.data_categories,
        "location": row.location,
        "transfer_safeguard": row.transfer_safeguard,
        "dpa_url": row.dpa_url,
        "active_since": row.active_since.isoformat(),
        "active_until": row.active_until.isoformat() if row.active_until else "",
        "placeholder": "yes" if row.placeholder else "",
        "changed": _day(row.updated_at),
        "used_for": row.used_for,
        "in_use": "yes" if subprocessors.in_use(row) else "",
        "use_note": subprocessors.use_note(row),
    }


class SubprocessorsState(SessionState):
    """`/subprocessors`: who processes personal data for the operator, and recent changes."""

    active_subprocessors: list[dict[str, str]] = []
    retired_subprocessors: list[dict[str, str]] = []
    list_changed: str = ""

    @rx.event
    def load(self):
        today = utcnow().date()
        with session_scope() as session:
            active = sorted(subprocessors.active(session, today=today), key=lambda row: not subprocessors.in_use(row))  # in use first
            self.active_subprocessors = [_subprocessor_row(row) for row in active]
            self.retired_subprocessors = [_subprocessor_row(row) for row in subprocessors.retired(session, today=today)]
            self.list_changed = _day(subprocessors.last_change(session))


class AdminSubprocessorsState(AdminBase):
    """`/admin/subprocessors`: add, edit and retire entries (each change audited)."""

    entries: list[dict[str, str]] = []
    sp_editing: bool = False
    sp: dict[str, str] = {}
    sp_key: int = 0

    def _forget(self) -> None:
        self.entries, self.sp, self.sp_editing = [], {}, False

    def _list(self) -> None:
        with session_scope() as session:
            self.entries = [_subprocessor_row(row) for row in subprocessors.all_entries(session)]

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
        self.sp = next((row for row in self.entries if row["id"] == entry_id), {}) if entry_id else {}
        self.sp_editing, self.sp_key = True, self.sp_key + 1

    @rx.event
    def save(self, form: dict):
        admin = self._admin("save subprocessor")
        if admin is None:
            return
        try:
            since = _date_field(str(form.get("active_since", "")))
            fields = SubprocessorFields(
                name=str(form.get("name", ""))[:200], purpose=str(form.get("purpose", ""))[:3000],
                data_categories=str(form.get("data_categories", ""))[:3000], location=str(form.get("location", ""))[:200],
                transfer_safeguard=str(form.get("transfer_safeguard", ""))[:300], dpa_url=str(form.get("dpa_url", ""))[:600],
                active_since=since.date() if since else None, used_for=str(form["used_for"])[:40] if "used_for" in form else None,
            )  # fmt: skip
            with session_scope() as session:
                if self.sp.get("id"):
                    subprocessors.edit(session, admin=admin, entry_id=parse_uuid(self.sp["id"]), fields=fields)
                else:
                    subprocessors.add(session, admin=admin, fields=fields)
        except ServiceError as error:
            self._say(str(error))
            return
        self.sp_editing = False
        self._list()
        self._say(f"{fields.name.strip()} saved; the public list shows the change.", "info")

    @rx.event
    def retire(self, entry_id: str):
        admin = self._admin("retire subprocessor")
        if admin is None:
            return
        try:
            with session_scope() as session:
                target = parse_uuid(entry_id)
                if target is None:
                    raise NotFound("That subprocessor no longer exists.")
                row = subprocessors.retire(session, admin=admin, entry_id=target)
        except ServiceError as error:
            self._say(str(error))
            return
        self._list()
        self._say(f"{row.name} is retired from today; the public list shows it under changes.", "info")

    @rx.event
    def cancel(self):
        if self._admin("cancel subprocessor edit") is not None:
            self.sp_editing = False
