"""`/admin` (dashboard and user lookup) and `/admin/audit`. What is shown comes from states that check
the role on the server; a non-admin sees only the 403 notice."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import message_callout
from clearbg_app.components.layout import page
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.state.admin import AdminBase, AdminState, AuditLogState
from clearbg_app.pages.route import route


def admin_nav() -> rx.Component:
    return rx.hstack(
        rx.link("Dashboard", href="/admin"),
        rx.link("Audit log", href="/admin/audit"),
        rx.link("Policies", href="/admin/policies"),
        rx.link("Subprocessors", href="/admin/subprocessors"),
        spacing="5",
        id="admin-nav",
    )


def admin_page(title: str, *children: rx.Component) -> rx.Component:
    """An admin page: the 403 notice for anyone else, the content for admins."""
    return page(
        rx.cond(
            AdminBase.forbidden,
            rx.callout(
                "403: this area is for administrators only. The attempt has been recorded.",
                icon="shield-alert",
                color_scheme="red",
                id="forbidden",
                width="100%",
            ),
            rx.vstack(
                rx.heading(title, size="7"),
                admin_nav(),
                message_callout(AdminBase.admin_notice, AdminBase.admin_notice_kind, id="admin-notice"),
                *children,
                width="100%",
                spacing="4",
            ),
        )
    )


def stat(label: str, value: rx.Var, detail: rx.Component | str = "", **props) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.text(label, size="2", color_scheme="gray"),
            rx.heading(value, size="6"),
            rx.text(detail, size="1", color_scheme="gray"),
            spacing="1",
        ),
        min_width="12em",
        **props,
    )


def dashboard() -> rx.Component:
    s = AdminState.stats
    return rx.vstack(
        rx.flex(
            stat("Users", s["users_total"], rx.text(s["users_new_7d"], " new in 7 days, ", s["users_suspended"], " suspended"), id="stat-users"),
            stat("Images today", s["images_today"], rx.text(s["images_7d"], " in 7 days (", s["api_images_7d"], " by API)"), id="stat-images"),
            stat("Credits sold, 7 days", s["credits_7d"], rx.text(s["credits_30d"], " in 30 days; revenue ", s["revenue_30d"]), id="stat-credits"),
            stat("Inference queue", s["queue"], "this process's pool", id="stat-queue"),
            wrap="wrap",
            spacing="4",
            width="100%",
        ),
        rx.heading("Scheduled jobs", size="4"),
        rows_table(
            AdminState.jobs,
            ("Job", "Every", "Last run", "Finished", "Result", "Counts"),
            lambda job: rx.table.row(
                rx.table.cell(job["name"]),
                rx.table.cell(job["every"]),
                rx.table.cell(job["started"]),
                rx.table.cell(job["finished"]),
                rx.table.cell(
                    rx.badge(job["status"], color_scheme=rx.cond(job["alarming"] != "", "red", "green")),
                    rx.cond(job["error"] != "", rx.text(job["error"], size="1", color_scheme="red")),
                ),
                rx.table.cell(job["counts"]),
                class_name=rx.cond(job["alarming"] != "", "job-alarming", "job-ok"),
            ),
            id="admin-jobs",
        ),
        width="100%",
        spacing="4",
    )


def account_panel() -> rx.Component:
    a = AdminState.account
    return rx.cond(
        a.contains("id"),
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.heading(a["email"], size="5", id="account-view-email"),
                    rx.cond(a["suspended"] != "", rx.badge("suspended since ", a["suspended"], color_scheme="red", id="account-suspended")),
                    align="center",
                    wrap="wrap",
                ),
                rx.text(
                    a["name"], " · ", a["role"], " · created ", a["created"], " · email ", a["verified"], " · ", a["policy"],
                    size="2",
                ),
                rx.text(
                    "Balance ", rx.text.strong(a["balance"], id="account-balance"), " credits · ", a["sessions"],
                    " signed-in browsers · ", a["keys"], " API keys · ", a["orders"], " paid orders",
                    size="2",
                ),
                rx.form(
                    rx.hstack(
                        rx.input(name="amount", placeholder="+10 or -2.5", width="9em", id="adjust-amount", required=True),
                        rx.input(name="reason", placeholder="Reason (kept in the ledger)", width="22em", id="adjust-reason", required=True),
                        rx.button("Grant / revoke credits", type="submit", id="adjust-submit"),
                        wrap="wrap",
                    ),
                    on_submit=AdminState.adjust_credits,
                    reset_on_submit=True,
                ),
                rx.cond(
                    a["suspended"] != "",
                    rx.button("Unsuspend", color_scheme="green", on_click=AdminState.unsuspend, id="unsuspend"),
                    rx.form(
                        rx.hstack(
                            rx.input(name="reason", placeholder="Reason for suspending", width="22em", id="suspend-reason", required=True),
                            rx.button("Suspend account", type="submit", color_scheme="red", id="suspend-submit"),
                            wrap="wrap",
                        ),
                        on_submit=AdminState.suspend,
                        reset_on_submit=True,
                    ),
                ),
                rx.text("Recent ledger entries", size="2", weight="medium"),
                dict_table(
                    AdminState.ledger,
                    (("When", "at"), ("Kind", "kind"), ("Amount", "amount"), ("Balance", "balance"), ("Reason", "reason")),
                    id="account-ledger",
                ),
                width="100%",
            ),
            width="100%",
            id="account-view",
        ),
    )


def user_lookup() -> rx.Component:
    return rx.vstack(
        rx.heading("Users", size="4"),
        rx.form(
            rx.hstack(
                rx.input(name="query", placeholder="Email (or part of it) or account id", width="24em", id="user-query"),
                rx.button("Search", type="submit", id="user-search"),
            ),
            on_submit=AdminState.search,
        ),
        rows_table(
            AdminState.users,
            ("Email", "Name", "Role", "Confirmed", "Status", "Created", ""),
            lambda user: rx.table.row(
                *(rx.table.cell(user[key]) for key in ("email", "name", "role", "verified", "status", "created")),
                rx.table.cell(rx.button("Open", size="1", variant="soft", on_click=AdminState.open_account(user["id"]))),
            ),
            id="admin-users",
        ),
        account_panel(),
        width="100%",
    )


@route("/admin", "Admin · ClearBG", AdminState.load)
def admin() -> rx.Component:
    return admin_page("Admin", dashboard(), user_lookup())


@route("/admin/audit", "Audit log · ClearBG", AuditLogState.load)
def audit_log() -> rx.Component:
    return admin_page(
        "Audit log",
        rx.text("Every admin action and every refused attempt to reach this area: who, what, when, before and after.", size="2"),
        rows_table(
            AuditLogState.events,
            ("When", "Who", "Action", "Target", "Before", "After"),
            lambda event: rx.table.row(
                rx.table.cell(event["at"]),
                rx.table.cell(event["who"]),
                rx.table.cell(rx.code(event["action"])),
                rx.table.cell(event["target"], size="1"),
                rx.table.cell(rx.text(event["before"], size="1", font_family="monospace")),
                rx.table.cell(rx.text(event["after"], size="1", font_family="monospace")),
            ),
            id="audit-log",
        ),
        rx.hstack(
            rx.button("Newer", variant="soft", on_click=AuditLogState.go_to(AuditLogState.audit_page - 1),
                      disabled=AuditLogState.audit_page <= 1),  # fmt: skip
            rx.text("Page ", AuditLogState.audit_page, " of ", AuditLogState.audit_pages, " (", AuditLogState.total, " events)", size="2"),
            rx.button("Older", variant="soft", on_click=AuditLogState.go_to(AuditLogState.audit_page + 1),
                      disabled=AuditLogState.audit_page >= AuditLogState.audit_pages),  # fmt: skip
            align="center",
        ),
    )
