"""`/admin/requests` (privacy requests sent by message) and `/admin/news` (the product-news composer)."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.markdown import rendered_markdown
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.pages.admin import admin_page
from clearbg_app.pages.route import route
from clearbg_app.services import news, requests
from clearbg_app.state.admin_requests import FILTERS, AdminRequestsState
from clearbg_app.state.news import AdminNewsState

SELECT_STYLE = {"padding": "0.4em", "border": "1px solid var(--gray-a7)", "border_radius": "var(--radius-2)",
                "background": "var(--color-surface)"}  # fmt: skip


def _filters() -> rx.Component:
    return rx.hstack(
        *(
            rx.button(label, size="1", variant=rx.cond(AdminRequestsState.status_filter == key, "solid", "soft"),
                      on_click=AdminRequestsState.filter_by(key), id=f"filter-{key}")  # fmt: skip
            for key, label in FILTERS.items()
        ),
        wrap="wrap",
    )


def _queue() -> rx.Component:
    return rx.box(_queue_table(), width="100%", overflow_x="auto")  # scrolls sideways on a phone


def _queue_table() -> rx.Component:
    return rows_table(
        AdminRequestsState.rows,
        ("Ref", "About", "From", "Account", "Status", "Received", "Due", ""),
        lambda row: rx.table.row(
            rx.table.cell(rx.code(row["ref"])),
            rx.table.cell(row["kind"]),
            rx.table.cell(row["email"]),
            rx.table.cell(row["account"]),
            rx.table.cell(row["status"]),
            rx.table.cell(row["received"]),
            rx.table.cell(rx.cond(row["overdue"] != "", rx.badge("overdue since ", row["due"], color_scheme="red"), rx.text(row["due"]))),
            rx.table.cell(rx.button("Open", size="1", variant="soft", on_click=AdminRequestsState.open_request(row["id"]))),
            class_name=rx.cond(row["overdue"] != "", "request-overdue", "request-row"),
        ),
        id="request-queue",
    )


def _detail() -> rx.Component:
    c = AdminRequestsState.current
    return rx.cond(
        c.contains("id"),
        rx.card(
            rx.vstack(
                rx.hstack(rx.heading(c["kind"], size="5"), rx.badge(c["status_label"], id="request-status"), align="center", wrap="wrap"),
                rx.text("From ", rx.text.strong(c["email"]), " · reference ", rx.code(c["ref"]), " · received ", c["received"],
                        " · due ", c["due"], size="2"),  # fmt: skip
                rx.cond(c["account"] != "",
                        rx.text("Account: ", rx.link(c["account"], href="/admin/users/" + c["account_id"]), size="2", id="request-account"),
                        rx.text("No account has this address.", size="2", color_scheme="gray")),  # fmt: skip
                rx.box(rx.text(c["message"], white_space="pre-wrap"), padding="0.8em", background="var(--gray-2)", width="100%",
                       border_radius="var(--radius-2)", id="request-message"),  # fmt: skip
                rx.cond(c["refusal"] != "", rx.text("Refused: ", c["refusal"], size="2", color_scheme="red")),
                rx.form(
                    rx.hstack(
                        rx.el.select(*(rx.el.option(requests.STATUS_LABELS[s], value=s) for s in requests.QUEUE_STATUSES[1:]),
                                     name="status", id="request-new-status", style=SELECT_STYLE),  # fmt: skip
                        rx.input(name="reason", placeholder="Reason (needed to refuse; the person is told)", width="24em",
                                 max_length=requests.MAX_REFUSAL, id="request-reason"),  # fmt: skip
                        rx.button("Change status", type="submit", id="request-status-submit"),
                        wrap="wrap",
                    ),
                    on_submit=AdminRequestsState.set_status,
                    reset_on_submit=True,
                ),
                rx.cond(
                    c["account"] != "",
                    rx.hstack(
                        rx.button("Export the account's data", variant="soft", on_click=AdminRequestsState.run_export, id="request-export"),
                        rx.form(
                            rx.hstack(
                                rx.el.label(rx.hstack(rx.el.input(type="checkbox", name="confirm", value="on", id="request-delete-confirm"),
                                                      rx.text("Delete this account", size="2"), align="center")),  # fmt: skip
                                rx.button("Schedule deletion", type="submit", color_scheme="red", variant="soft", id="request-delete"),
                                align="center",
                            ),
                            on_submit=AdminRequestsState.run_deletion,
                            reset_on_submit=True,
                        ),
                        wrap="wrap",
                        spacing="4",
                    ),
                ),
                rx.text("Replies sent", size="2", weight="medium"),
                dict_table(AdminRequestsState.replies, (("When", "at"), ("Reply", "body")), id="request-replies"),
                rx.form(
                    rx.vstack(
                        rx.text_area(name="body", placeholder="Reply to the person (sent by email)", rows="5", width="100%",
                                     max_length=requests.MAX_REPLY, id="request-reply-body", required=True),  # fmt: skip
                        rx.button("Send reply", type="submit", id="request-reply-submit"),
                        width="100%",
                    ),
                    on_submit=AdminRequestsState.reply,
                    reset_on_submit=True,
                    width="100%",
                ),
                width="100%",
            ),
            width="100%",
            id="request-detail",
        ),
    )


@route("/admin/requests", "Privacy requests · ClearBG", AdminRequestsState.load)
def admin_requests() -> rx.Component:
    return admin_page(
        "Privacy requests",
        rx.text("Requests sent through /contact and confirmed from the link mailed to their address. Each is due 30 days "
                "after it was confirmed; every step is audited.", size="2"),  # fmt: skip
        _filters(),
        _queue(),
        _detail(),
    )


@route("/admin/news", "Product news · ClearBG", AdminNewsState.load)
def admin_news() -> rx.Component:
    return admin_page(
        "Product news",
        rx.text("Sent only to confirmed accounts that have the product-news consent when each mail goes out, each with a "
                "one-click unsubscribe. Markdown; raw HTML, images and links other than https/http/mailto are refused.", size="2"),  # fmt: skip
        rx.cond(
            AdminNewsState.preview_html == "",
            rx.form(
                rx.vstack(
                    rx.input(name="subject", placeholder="Subject", default_value=AdminNewsState.news_subject, width="100%",
                             max_length=news.MAX_SUBJECT, id="news-subject", required=True),  # fmt: skip
                    rx.text_area(name="body", placeholder="The news, in Markdown", default_value=AdminNewsState.news_body, rows="12",
                                 width="100%", max_length=news.MAX_BODY, id="news-body", required=True),  # fmt: skip
                    rx.button("Preview", type="submit", id="news-preview"),
                    width="100%",
                ),
                on_submit=AdminNewsState.preview,
                width="100%",
            ),
            rx.vstack(
                rx.heading(AdminNewsState.news_subject, size="5", id="news-preview-subject"),
                rx.card(rendered_markdown(AdminNewsState.preview_html, id="news-preview-body"), width="100%"),
                rx.callout(rx.text("This goes to ", rx.text.strong(AdminNewsState.preview_recipients, id="news-recipients"),
                                   " accounts with the product-news consent now."), icon="mail", width="100%"),  # fmt: skip
                rx.hstack(
                    rx.button("Edit", variant="soft", on_click=AdminNewsState.edit, id="news-edit"),
                    rx.button("Send to ", AdminNewsState.preview_recipients, " accounts", on_click=AdminNewsState.send,
                              id="news-send", disabled=AdminNewsState.preview_recipients == 0),  # fmt: skip
                ),
                width="100%",
            ),
        ),
    )
