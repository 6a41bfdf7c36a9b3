"""`/admin` (dashboard and user lookup) and `/admin/audit`. What is shown comes from states that check
the role on the server; a non-admin sees only the 403 notice."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import message_callout
from clearbg_app.components.layout import page
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.pages.route import route
from clearbg_app.state.admin import AdminBase, AdminState, AuditLogState


def admin_nav() -> rx.Component:
    return rx.hstack(
        rx.link("Dashboard", href="/admin"),
        rx.link("Requests", href="/admin/requests"),
        rx.link("News", href="/admin/news"),
        rx.link("Audit log", href="/admin/audit"),
        rx.link("Policies", href="/admin/policies"),
        rx.link("Subprocessors", href="/admin/subprocessors"),
        spacing="5",
        wrap="wrap",
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
            rx.link(
                stat("Privacy requests", s["requests_open"], rx.text(s["requests_overdue"], " overdue (due 30 days after receipt)"),
                     id="stat-requests", class_name=rx.cond(s["requests_overdue"] != "0", "stat-alarming", "stat-ok"),
                     background=rx.cond(s["requests_overdue"] != "0", "var(--red-3)", "")),  # fmt: skip
                href="/admin/requests", underline="none",
            ),
            wrap="wrap",
            spacing="4",
            width="100%",
        ),
        rx.heading("Scheduled jobs", size="4"),
        rows_table(
            AdminState.jobs,
            ("Job", "Every", "Last run", "Ran on", "Finished", "Result", "Counts"),
            lambda job: rx.table.row(
                rx.table.cell(job["name"]),
                rx.table.cell(job["every"]),
                rx.table.cell(job["started"]),
                rx.table.cell(job["instance"]),
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
        rx.heading("Dead-lettered batch items", size="4"),
        rx.text("Items whose workers kept dying on them: failed with dead_letter, not charged; the owner may retry them.", size="2"),
        rows_table(
            AdminState.dead_items,
            ("Item", "Batch", "File", "Attempts", "Given up"),
            lambda item: rx.table.row(
                rx.table.cell(item["item"]), rx.table.cell(item["batch"]), rx.table.cell(item["file"]),
                rx.table.cell(item["attempts"]), rx.table.cell(item["when"]),
            ),  # fmt: skip
            empty="None: every item ended normally.",
            id="admin-dead-letters",
        ),
        width="100%",
        spacing="4",
    )


def suspend_dialog() -> rx.Component:
    """Suspending asks first: it ends the account's sessions and refuses its API keys at once."""
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Suspend ", AdminState.account["email"], "?"),
            rx.alert_dialog.description("Its signed-in browsers are signed out now, and sign-in and its API keys are refused until "
                                        "you unsuspend it. The reason goes into the audit log.", size="2"),  # fmt: skip
            rx.form(
                rx.vstack(
                    rx.input(name="reason", placeholder="Reason for suspending", width="100%", id="suspend-reason", required=True),
                    rx.hstack(
                        rx.button("Cancel", type="button", variant="soft", color_scheme="gray", on_click=AdminState.cancel_suspension,
                                  id="suspend-cancel"),  # fmt: skip
                        rx.button("Suspend", type="submit", color_scheme="red", id="suspend-submit"),
                        justify="end",
                        width="100%",
                    ),
                    width="100%",
                ),
                on_submit=AdminState.suspend,
                reset_on_submit=True,
            ),
        ),
        open=AdminState.confirming_suspension,
    )


def hold_and_minor() -> rx.Component:
    a = AdminState.account
    return rx.cond(
        a["deletion"] == "anonymized",
        rx.text("This account has been anonymized.", size="2", color_scheme="gray"),
        rx.vstack(
            rx.cond(
                a["hold_until"] != "",
                rx.hstack(
                    rx.badge("Legal hold until ", a["hold_until"], color_scheme="amber", id="account-hold"),
                    rx.text(a["hold_reason"], size="2"),
                    rx.button("Lift hold", size="1", variant="soft", on_click=AdminState.lift_hold, id="hold-lift"),
                    align="center", wrap="wrap",
                ),  # fmt: skip
                rx.form(
                    rx.hstack(
                        rx.input(name="reason", placeholder="Legal reason for a hold (not shown to the person)", width="22em",
                                 id="hold-reason", required=True, max_length=300),  # fmt: skip
                        rx.input(name="until", type="date", id="hold-until", required=True, width="11em"),
                        rx.button("Place legal hold", type="submit", variant="soft", color_scheme="amber", id="hold-submit"),
                        wrap="wrap",
                    ),
                    on_submit=AdminState.place_hold,
                    reset_on_submit=True,
                ),
            ),
            rx.cond(a["deletion"] != "", rx.text("Deletion: ", a["deletion"], size="2", id="account-deletion")),
            rx.form(
                rx.hstack(
                    rx.el.select(rx.el.option("from a request", value="request"), rx.el.option("from a report", value="report"),
                                 name="source", id="minor-source"),  # fmt: skip
                    rx.el.label(rx.hstack(rx.el.input(type="checkbox", name="confirm", value="on", id="minor-confirm"),
                                          rx.text("This account belongs to a minor", size="2"), align="center")),  # fmt: skip
                    rx.button("Close and delete now", type="submit", color_scheme="red", variant="soft", id="minor-submit"),
                    wrap="wrap", align="center",
                ),  # fmt: skip
                on_submit=AdminState.flag_minor,
                reset_on_submit=True,
            ),
            width="100%",
        ),
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
                        message_callout(AdminState.grant_notice, AdminState.grant_notice_kind, id="adjust-notice"),
                        wrap="wrap",
                        align="center",
                    ),
                    on_submit=AdminState.adjust_credits,
                    reset_on_submit=False,
                ),
                rx.cond(
                    a["suspended"] != "",
                    rx.button("Unsuspend", color_scheme="green", on_click=AdminState.unsuspend, id="unsuspend"),
                    rx.button("Suspend account…", color_scheme="red", variant="soft", on_click=AdminState.open_suspension, id="suspend-open"),
                ),
                suspend_dialog(),
                hold_and_minor(),
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
                rx.table.cell(rx.link(rx.button("Open", size="1", variant="soft"), href="/admin/users/" + user["id"])),
            ),
            id="admin-users",
        ),
        account_panel(),
        width="100%",
    )


@route("/admin", "Admin · ClearBG", AdminState.load)
def admin() -> rx.Component:
    return admin_page("Admin", dashboard(), user_lookup())


@route("/admin/users/[user_id]", "Account · ClearBG", AdminState.load_user)
def user_page() -> rx.Component:
    """`/admin/users/{id}`: one account, at a link that can be shared among admins."""
    return admin_page("Account", rx.link("All users", href="/admin", size="2"), account_panel())


@route("/admin/audit", "Audit log · ClearBG", AuditLogState.load)
def audit_log() -> rx.Component:
    return admin_page(
        "Audit log",
        rx.text("Every admin action and every refused attempt to reach this area: who, what, when, before and after.", size="2"),
        rows_table(
            AuditLogState.events,
            ("When", "Who", "Action", "Target", "Before", "After"),
            lambda event: rx.table.row(
                rx.table.cell(event.at),
                rx.table.cell(event.who),
                rx.table.cell(rx.code(event.action)),
                rx.table.cell(event.target, size="1"),
                rx.table.cell(rx.text(event.before, size="1", font_family="monospace")),
                rx.table.cell(rx.text(event.after, size="1", font_family="monospace")),
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
