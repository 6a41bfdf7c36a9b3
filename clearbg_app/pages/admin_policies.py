"""`/admin/policies` (versioned privacy policy and terms) and `/admin/subprocessors`."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.markdown import rendered_markdown
from clearbg_app.components.tables import rows_table
from clearbg_app.pages.admin import admin_page
from clearbg_app.pages.route import route
from clearbg_app.services.subprocessors import FEATURES
from clearbg_app.state.admin_policies import AdminPoliciesState, AdminSubprocessorsState

S = AdminPoliciesState
EFFECTIVE_HELP = (
    "Leave empty to take effect the moment you publish. A date that has passed by the time you publish also "
    "becomes the moment of publishing: a version never takes effect retroactively. A future date announces the "
    "version now and puts it in effect on that day (00:00 UTC)."
)


def version_list() -> rx.Component:
    return rows_table(
        S.policy_versions,
        ("Document", "Version", "Status", "Date", "Summary", ""),
        lambda row: rx.table.row(
            rx.table.cell(row["title"]),
            rx.table.cell(row["label"]),
            rx.table.cell(
                rx.badge(row["status"], color_scheme=rx.cond(row["status"] == "draft", "amber", "green")),
                rx.cond(row["material"] != "", rx.badge("material", color_scheme="red", margin_left="0.5em")),
            ),
            rx.table.cell(row["when"]),
            rx.table.cell(row["summary"]),
            rx.table.cell(rx.button(rx.cond(row["status"] == "draft", "Edit", "View"), size="1", variant="soft",
                                    on_click=S.open_version(row["id"]))),  # fmt: skip
        ),
        id="policy-versions",
    )


def editor() -> rx.Component:
    draft = S.edit_status != "published"
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(rx.cond(S.edit_kind == "privacy", "Privacy policy", "Terms of service"), " · ", S.edit_status, size="5"),
                rx.spacer(),
                rx.cond(S.edit_revision > 0, rx.text("revision ", S.edit_revision, size="1", color_scheme="gray")),
                rx.button("Close", variant="ghost", size="1", on_click=S.close_editor),
                width="100%",
            ),
            rx.cond(
                draft,
                rx.form(
                    rx.vstack(
                        rx.hstack(
                            rx.vstack(rx.text("Version label", size="2"), rx.input(name="label", default_value=S.edit_label, id="policy-label", required=True)),
                            rx.vstack(rx.text("Effective date (UTC)", size="2"), rx.input(name="effective", type="date", default_value=S.edit_effective, id="policy-effective-date")),
                            rx.el.label(
                                rx.hstack(rx.el.input(type="checkbox", name="material", id="policy-material", default_checked=S.edit_material),
                                          rx.text("Material change (banner and email to every account holder)", size="2"), align="center"),  # fmt: skip
                            ),
                            wrap="wrap",
                            align="end",
                            spacing="4",
                        ),
                        rx.text(EFFECTIVE_HELP, size="1", color_scheme="gray", id="effective-help"),
                        rx.text("Summary of changes", size="2"),
                        rx.input(name="summary", default_value=S.edit_summary, width="100%", id="policy-summary"),
                        rx.text("Text (Markdown; raw HTML is shown as text, only http(s), mailto and relative links work)", size="2"),
                        rx.text_area(name="body", default_value=S.edit_body, rows="18", width="100%", id="policy-body-input",
                                     font_family="monospace"),  # fmt: skip
                        rx.hstack(
                            rx.button("Save draft and preview", type="submit", id="policy-save"),
                            rx.cond(S.edit_id != "", rx.button("Publish", type="button", color_scheme="green", on_click=S.ask_publish, id="policy-publish")),
                            rx.cond(S.edit_id != "", rx.button("Discard draft", type="button", color_scheme="red", variant="soft", on_click=S.discard, id="policy-discard")),
                            spacing="3",
                        ),
                        width="100%",
                    ),
                    on_submit=S.save,
                    key=S.edit_key,
                    width="100%",
                ),
                rx.text("Published versions are frozen. To change the text, create a new draft.", size="2", color_scheme="gray"),
            ),
            rx.heading("Preview", size="4"),
            rendered_markdown(S.preview_html, id="policy-preview", padding="1em", border="1px solid var(--gray-6)", border_radius="8px"),
            width="100%",
        ),
        width="100%",
        id="policy-editor",
    )


@route("/admin/policies", "Policies · ClearBG", AdminPoliciesState.load)
def admin_policies() -> rx.Component:
    return admin_page(
        "Policies",
        rx.hstack(
            rx.button("New privacy policy draft", on_click=S.new_draft("privacy"), id="new-privacy-draft"),
            rx.button("New terms draft", variant="soft", on_click=S.new_draft("terms"), id="new-terms-draft"),
        ),
        rx.cond(S.editing, editor()),
        publish_dialog(),
        version_list(),
    )


# Subprocessors -----------------------------------------------------------------------------------------------

P = AdminSubprocessorsState
FIELDS = (
    ("name", "Name", "Company, e.g. Example Hosting GmbH"),
    ("purpose", "Purpose", "What they do for the service"),
    ("data_categories", "Data categories", "Which personal data they receive"),
    ("location", "Location / country", "Where they process it"),
    ("transfer_safeguard", "Transfer safeguard", "e.g. standard contractual clauses, adequacy decision"),
    ("dpa_url", "DPA link", "https://... (http or https only)"),
)


def subprocessor_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading(rx.cond(P.sp.contains("id"), "Edit subprocessor", "Add a subprocessor"), size="4"),
                *(
                    rx.vstack(rx.text(label, size="2"), rx.input(name=name, default_value=P.sp.get(name, ""), placeholder=hint,
                                                                 width="100%", id=f"sp-{name}"), width="100%", spacing="1")  # fmt: skip
                    for name, label, hint in FIELDS
                ),
                rx.vstack(rx.text("Used only for (the public list marks it in use only while that is configured)", size="2"),
                          rx.el.select(rx.el.option("everything (always in use)", value=""),
                                       *(rx.el.option(label, value=key) for key, (label, _) in FEATURES.items()),
                                       name="used_for", default_value=P.sp.get("used_for", ""), id="sp-used_for"),
                          spacing="1"),  # fmt: skip
                rx.vstack(rx.text("Active since (empty: today)", size="2"),
                          rx.input(name="active_since", type="date", default_value=P.sp.get("active_since", ""), id="sp-active_since"),
                          spacing="1"),  # fmt: skip
                rx.hstack(rx.button("Save", type="submit", id="sp-save"), rx.button("Cancel", type="button", variant="soft", on_click=P.cancel)),
                width="100%",
            ),
            on_submit=P.save,
            key=P.sp_key,
        ),
        width="100%",
        id="subprocessor-form",
    )


def publish_dialog() -> rx.Component:
    """Publishing a material change emails every account holder: say how many, and ask first."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Publish a material change?"),
            rx.alert_dialog.description(
                "When it takes effect, ", rx.text.strong(S.publish_recipients, id="publish-recipients"),
                " account holders are emailed about it, and signed-in users see a banner until they acknowledge it. "
                "Published versions cannot be changed.", size="2",
            ),  # fmt: skip
            rx.hstack(
                rx.button("Cancel", variant="soft", color_scheme="gray", on_click=S.cancel_publish, id="policy-publish-cancel"),
                rx.button("Publish and email ", S.publish_recipients, " account holders", color_scheme="green", on_click=S.publish,
                          id="policy-publish-confirm"),  # fmt: skip
                justify="end",
                margin_top="1em",
            ),
        ),
        open=S.confirming_publish,
    )


@route("/admin/subprocessors", "Subprocessors · ClearBG", AdminSubprocessorsState.load)
def admin_subprocessors() -> rx.Component:
    return admin_page(
        "Subprocessors",
        rx.text(
            "Shown publicly at /subprocessors with their dates. Rows marked 'fill in' were seeded as placeholders: "
            "the hosting and email providers are your choice, so name them here.",
            size="2",
        ),
        rx.button("Add a subprocessor", on_click=P.start_edit(""), id="sp-add"),
        rx.cond(P.sp_editing, subprocessor_form()),
        rows_table(
            P.entries,
            ("Name", "Purpose", "Location", "Safeguard", "Since", "Until", ""),
            lambda row: rx.table.row(
                rx.table.cell(row["name"], rx.cond(row["placeholder"] != "", rx.badge("placeholder: fill in", color_scheme="amber", margin_left="0.5em")),
                              rx.text(row["use_note"], size="1", color_scheme="gray")),
                rx.table.cell(row["purpose"], size="1"),
                rx.table.cell(row["location"]),
                rx.table.cell(row["transfer_safeguard"]),
                rx.table.cell(row["active_since"]),
                rx.table.cell(row["active_until"]),
                rx.table.cell(
                    rx.cond(
                        row["active_until"] == "",
                        rx.hstack(
                            rx.button("Edit", size="1", variant="soft", on_click=P.start_edit(row["id"])),
                            rx.button("Retire", size="1", variant="soft", color_scheme="red", on_click=P.retire(row["id"])),
                        ),
                    )
                ),
            ),
            id="admin-subprocessors",
        ),
    )
