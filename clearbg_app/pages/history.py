"""`/history`: the images ClearBG keeps for a person who consented to the processing history."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.forms import flash_callout, message_callout
from clearbg_app.components.layout import page
from clearbg_app.pages.route import route
from clearbg_app.state.privacy import HistoryState


def item_card(item) -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.image(src=item["thumb"], alt=item["name"], height="8em", width="100%", object_fit="contain",
                     style={"background": "repeating-conic-gradient(#eee 0% 25%, #fff 0% 50%) 50% / 16px 16px"}),  # fmt: skip
            rx.text(item["name"], size="2", weight="medium", trim="both"),
            rx.text("Uploaded ", item["uploaded"], size="1", color_scheme="gray"),
            rx.text("Deleted after ", item["expires"], size="1", color_scheme="gray"),
            rx.cond(
                item["short"] == "yes",
                rx.button("Keep in history", size="1", variant="outline", on_click=HistoryState.keep(item["id"]), class_name="keep-in-history"),
            ),
            rx.hstack(
                rx.cond(item["download"] != "", rx.button("Result", size="1", on_click=rx.download(url=item["download"]))),
                rx.button("Original", size="1", variant="soft", on_click=rx.download(url=item["original"])),
                rx.button("Delete", size="1", color_scheme="red", variant="soft", on_click=HistoryState.delete(item["id"])),
                spacing="2",
            ),
            spacing="2",
        ),
        width="14em",
    )


@route("/history", "Processing history · ClearBG", HistoryState.load)
def history() -> rx.Component:
    return page(
        rx.heading("Processing history", size="7"),
        flash_callout(),
        message_callout(HistoryState.notice, HistoryState.notice_kind, id="history-notice"),
        rx.cond(
            HistoryState.enabled,
            rx.vstack(
                rx.hstack(
                    rx.text("Images you upload from now on are kept for ", HistoryState.days, " days after upload; "
                            "earlier ones keep their hour unless you keep them in the history.", size="2"),
                    rx.spacer(),
                    rx.button("Delete all", color_scheme="red", variant="outline", on_click=HistoryState.delete(""), id="delete-all"),
                    width="100%",
                    align="center",
                ),
                rx.cond(
                    HistoryState.items.length() > 0,
                    rx.flex(rx.foreach(HistoryState.items, item_card), wrap="wrap", spacing="3", id="history-items"),
                    rx.text("No images yet: the ones you process from now on appear here.", color_scheme="gray"),
                ),
                rx.link("Turn the history off in the privacy center", href="/privacy-center", size="2"),
                width="100%",
                spacing="4",
            ),
            rx.vstack(
                rx.text("Without your consent, ClearBG deletes every upload and result within the hour, so there is no history to show."),
                rx.button("Keep my images for ", HistoryState.days, " days", on_click=HistoryState.turn_on, id="history-on"),
                rx.link("More about your privacy choices", href="/privacy-center", size="2"),
                spacing="3",
            ),
        ),
    )
