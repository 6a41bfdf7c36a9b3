"""Public legal pages: `/privacy` and `/terms` (the version in effect), their version lists and single
versions, and `/subprocessors`. The text is rendered to safe HTML on the server."""

from __future__ import annotations

import reflex as rx

from clearbg_app.components.layout import page
from clearbg_app.components.markdown import rendered_markdown
from clearbg_app.components.tables import dict_table, rows_table
from clearbg_app.pages.route import route
from clearbg_app.settings import get_settings
from clearbg_app.state.policies import LegalState, SubprocessorsState


def _version_line() -> rx.Component:
    return rx.hstack(
        rx.badge("Version ", LegalState.doc_label, size="2", id="policy-version"),
        rx.text(LegalState.doc_when, size="2", color_scheme="gray", id="policy-effective"),
        rx.spacer(),
        rx.link("Earlier versions", href=LegalState.versions_href, size="2", id="policy-versions-link"),
        width="100%",
        align="center",
        wrap="wrap",
    )


def operator_block() -> rx.Component:
    """Who the operator is and how to reach them, from the settings in force: part of both documents."""
    who = get_settings().operator()
    return rx.card(
        rx.heading("Who runs this service", size="4"),
        rx.text(who["name"], weight="medium"),
        rx.text(who["address"], white_space="pre-line"),
        rx.text("Contact: ", rx.link(who["email"], href=f"mailto:{who['email']}")),
        rx.text("Privacy questions and requests: ", who["privacy_contact"], ", or the ", rx.link("contact form", href="/contact"),
                " (also without an account).", size="2"),  # fmt: skip
        width="100%",
        id="operator-identity",
    )


@route("/privacy", "Privacy policy · ClearBG", LegalState.load)
@route("/privacy/versions/[label]", "Privacy policy · ClearBG", LegalState.load)
@route("/terms", "Terms of service · ClearBG", LegalState.load)
@route("/terms/versions/[label]", "Terms of service · ClearBG", LegalState.load)
def document() -> rx.Component:
    """One version: the one in effect, or an earlier one (which says so and links the current one)."""
    return page(
        rx.cond(
            LegalState.doc_missing != "",
            rx.callout(LegalState.doc_missing, color_scheme="red", id="policy-missing", width="100%"),
            rx.vstack(
                _version_line(),
                rx.cond(
                    ~LegalState.doc_is_current,
                    rx.callout(
                        rx.text("This is not the version in effect. ", rx.link("Read the current one", href=LegalState.current_href), "."),
                        color_scheme="amber",
                        width="100%",
                        id="policy-not-current",
                    ),
                ),
                rendered_markdown(LegalState.doc_html, id="policy-body"),
                operator_block(),
                width="100%",
            ),
        )
    )


@route("/privacy/versions", "Privacy policy: versions · ClearBG", LegalState.load)
@route("/terms/versions", "Terms of service: versions · ClearBG", LegalState.load)
def versions() -> rx.Component:
    return page(
        rx.heading(LegalState.doc_title, ": all versions", size="7"),
        rx.text("Each version with its date and what changed. Material changes are announced to every account holder.", size="2"),
        rows_table(
            LegalState.versions,
            ("Version", "Date", "What changed", ""),
            lambda row: rx.table.row(
                rx.table.cell(rx.link(row["label"], href=row["href"])),
                rx.table.cell(row["when"]),
                rx.table.cell(row["summary"]),
                rx.table.cell(rx.cond(row["material"] != "", rx.badge(row["material"], color_scheme="amber"))),
            ),
            id="policy-version-list",
        ),
        rx.link("Back to the version in effect", href=LegalState.current_href, size="2"),
    )


SUBPROCESSOR_COLUMNS = (
    ("Name", "name"),
    ("Purpose", "purpose"),
    ("Data", "data_categories"),
    ("Location", "location"),
    ("Transfer safeguard", "transfer_safeguard"),
    ("Since", "active_since"),
)


def _dpa(row) -> rx.Component:
    return rx.cond(row["dpa_url"] != "", rx.link("DPA", href=row["dpa_url"], is_external=True), rx.text("-"))


@route("/subprocessors", "Subprocessors · ClearBG", SubprocessorsState.load)
def subprocessors() -> rx.Component:
    return page(
        rx.heading("Subprocessors", size="7"),
        rx.text(
            "The companies that process personal data for the operator of this ClearBG service, bound by contract "
            "to do so only on its instructions. See the ",
            rx.link("privacy policy", href="/privacy"),
            " for what is processed and why. Entries that serve a feature this site has turned off are marked "
            "\"not in use\": none of your data goes to them.",
            size="2",
        ),
        rx.text("Last change to this list: ", SubprocessorsState.list_changed, size="2", color_scheme="gray", id="subprocessors-changed"),
        rx.box(
            rows_table(
                SubprocessorsState.active_subprocessors,
                (*(heading for heading, _ in SUBPROCESSOR_COLUMNS), "Agreement"),
                lambda row: rx.table.row(
                    rx.table.cell(row["name"], rx.box(rx.badge(row["use_note"], color_scheme=rx.cond(row["in_use"] != "", "green", "gray"),
                                                               white_space="normal", class_name="use-note"), margin_top="0.3em"),
                                  min_width="10em"),  # fmt: skip
                    *(rx.table.cell(row[key], min_width="9em") for _, key in SUBPROCESSOR_COLUMNS[1:]),
                    rx.table.cell(_dpa(row)),
                    class_name=rx.cond(row["in_use"] != "", "subprocessor-in-use", "subprocessor-unused"),
                ),
                id="subprocessor-list",
            ),
            width="100%",
            overflow_x="auto",  # scrolls sideways on a phone instead of squeezing every column
        ),
        rx.cond(
            SubprocessorsState.retired_subprocessors.length() > 0,
            rx.vstack(
                rx.heading("No longer used", size="4"),
                dict_table(
                    SubprocessorsState.retired_subprocessors,
                    (("Name", "name"), ("Purpose", "purpose"), ("Used from", "active_since"), ("Until", "active_until")),
                    id="subprocessor-changes",
                ),
                width="100%",
            ),
        ),
    )
