"""`/`: drop a photo, see the cut-out over a checkerboard, download the PNG; or, signed in, drop many
photos in batch mode, follow each one and download them all as a ZIP."""

from __future__ import annotations

import reflex as rx
import reflex_components_core.core.upload as upload_module
from reflex.event import EventChain
from reflex.vars.base import VarData
from reflex_components_core.core.upload import get_upload_files_context_var_data

from clearbg_app.components.editor import editor
from clearbg_app.components.layout import page
from clearbg_app.components.tables import rows_table
from clearbg_app.inference.decode import SUPPORTED
from clearbg_app.models.billing import UNITS_PER_CREDIT
from clearbg_app.pages.route import route
from clearbg_app.samples import LICENCE_URL, SAMPLES
from clearbg_app.settings import get_settings
from clearbg_app.state.base import SessionState
from clearbg_app.state.batch import BATCH_UPLOAD_ID, RECENT_HOURS, SIZES, BatchState
from clearbg_app.state.remove import UPLOAD_ID, RemoveState

ACCEPT = {
    "image/jpeg": [".jpg", ".jpeg"],
    "image/png": [".png"],
    "image/webp": [".webp"],
    "image/gif": [".gif"],
    "image/bmp": [".bmp"],
    "image/tiff": [".tif", ".tiff"],
    "image/heic": [".heic", ".heif"],
    "image/avif": [".avif"],
}

def rejection_codes(rejections: rx.Var) -> rx.Var:
    """Only the error codes of refused files: the rejections hold the File objects themselves,
    which must not travel over the websocket."""
    return rx.Var(f"{rejections}.flatMap((rejection) => rejection.errors.map((error) => error.code))").to(list[str])


def drop_zone() -> rx.Component:
    """The big drop zone; once a result shows, an "Upload another" button (the same input), so the
    result is on screen. Drops anywhere on the window and pastes land here too (`clearbg-input.js`)."""
    compact = RemoveState.stage == "done"
    return rx.box(
        rx.upload(
            rx.cond(
                compact,
                rx.hstack(rx.icon("image-up", size=18), rx.text("Upload another", weight="medium"), align="center", justify="center"),
                rx.vstack(
                    rx.icon("image-up", size=40),
                    rx.text("Drop a photo here, or click to choose one", weight="medium"),
                    rx.text("You can also paste an image or its address anywhere on the page.", size="2", color_scheme="gray"),
                    rx.text(SUPPORTED, size="2", color_scheme="gray"),
                    align="center",
                    spacing="2",
                ),
            ),
            id=UPLOAD_ID,
            accept=ACCEPT,
            multiple=False,
            max_files=1,
            max_size=get_settings().max_upload_bytes,
            on_drop_rejected=lambda rejections: RemoveState.drop_rejected(rejection_codes(rejections)),
            on_drop=RemoveState.handle_upload(
                rx.upload_files(upload_id=UPLOAD_ID, on_upload_progress=RemoveState.upload_progress)
            ),
            border=rx.cond(compact, "1px solid var(--gray-7)", "2px dashed var(--gray-7)"),
            border_radius="12px",
            padding=rx.cond(compact, "0.6em 1.2em", "3em 1em"),
            width=rx.cond(compact, "fit-content", "100%"),
            cursor="pointer",
            class_name="pick-file",
        ),
        id="single-drop",
        width="100%",
    )


def url_field() -> rx.Component:
    """An image's address, fetched by the server through the API's SSRF-safe fetcher."""
    return rx.form(
        rx.hstack(
            rx.input(name="image_url", id="image-url", type="url", placeholder="…or an image URL: https://example.com/photo.jpg",
                     size="3", flex="1", min_width="12em"),  # fmt: skip
            rx.button("Fetch", type="submit", size="3", variant="soft", id="fetch-url"),
            width="100%",
            wrap="wrap",
        ),
        on_submit=RemoveState.fetch_url,
        reset_on_submit=True,
        id="url-form",
        width="100%",
    )


def samples() -> rx.Component:
    """Up to four sample photos to try, each credited as its licence asks."""
    return rx.vstack(
        rx.text("No photo at hand? Try one of these:", size="2", color_scheme="gray"),
        rx.flex(
            *(
                rx.vstack(
                    rx.button(
                        rx.image(src=sample.url, alt=f"Sample: {sample.name}", height="60px", width="78px", object_fit="cover",
                                 border_radius="6px"),  # fmt: skip
                        variant="ghost", height="auto", padding="2px", id=f"sample-{sample.name.split('.')[0]}",
                        on_click=RemoveState.try_sample(sample.name), aria_label=f"Try the sample photo {sample.name}",
                    ),  # fmt: skip
                    rx.text(
                        rx.link(f"Photo {sample.flickr_id}", href=sample.photo_page, is_external=True), ", ",
                        rx.link("CC BY 2.0", href=LICENCE_URL, is_external=True), size="1", color_scheme="gray",
                        class_name="sample-attribution",
                    ),  # fmt: skip
                    spacing="1",
                    align="center",
                    width="80px",
                )
                for sample in SAMPLES
            ),
            wrap="wrap",
            gap="3",
        ),
        id="samples",
        spacing="2",
        width="100%",
    )


def progress() -> rx.Component:
    return rx.hstack(
        rx.spinner(size="3"),
        rx.text(
            rx.cond(
                RemoveState.stage == "uploading",
                f"Uploading… {RemoveState.uploaded_percent}%",
                rx.cond(
                    RemoveState.stage == "fetching",
                    "Downloading the image…",
                    rx.cond(RemoveState.busy_message != "", RemoveState.busy_message, "Removing the background…"),
                ),
            ),
            id="progress-text",
        ),
        align="center",
        id="progress",
    )


def get_credits_link(**props) -> rx.Component:
    return rx.link(rx.button(rx.icon("coins"), "Get credits", size="2", variant="soft"), href="/credits", **props)


def full_refusal() -> rx.Component:
    """Why the full-resolution click was refused, beside the button, with the way forward."""
    return rx.cond(
        RemoveState.full_error != "",
        rx.hstack(
            rx.text(RemoveState.full_error, size="2", color_scheme="red", id="full-error"),
            rx.cond(RemoveState.full_needs_credits, get_credits_link(id="full-get-credits")),
            align="center",
            wrap="wrap",
        ),
    )


def full_resolution() -> rx.Component:
    """The full-size cut-out for a price shown before the click; signed-in users only."""
    label = rx.cond(
        RemoveState.full_stage == "working",
        "Making the full-size cut-out…",
        "Full resolution " + RemoveState.full_size + " · " + RemoveState.full_price + " credit",
    )
    return rx.cond(
        RemoveState.full_price != "",
        rx.cond(
            SessionState.signed_in,
            rx.cond(
                RemoveState.full_stage == "done",
                rx.button(
                    rx.icon("download"),
                    "Download full resolution",
                    size="3",
                    id="full-download-button",
                    on_click=rx.download(url=RemoveState.full_download_url),
                ),
                rx.hstack(
                    rx.button(
                        label,
                        size="3",
                        variant="outline",
                        id="full-button",
                        loading=RemoveState.full_stage == "working",
                        on_click=RemoveState.get_full_resolution,
                    ),
                    rx.cond(
                        (RemoveState.full_stage == "working") & (RemoveState.busy_message != ""),
                        rx.text(RemoveState.busy_message, size="2", color_scheme="amber", id="full-busy"),
                    ),
                    full_refusal(),
                    align="center",
                    wrap="wrap",
                ),
            ),
            rx.link(
                "Sign in for full resolution (" + RemoveState.full_price + " credit)",
                href="/login?next=/",
                size="2",
                id="full-sign-in",
            ),
        ),
    )


def results() -> rx.Component:
    """The result as an editor (components/editor.py), then the full-resolution offer."""
    return rx.vstack(
        editor(SessionState.signed_in & (RemoveState.full_price != "")),
        rx.hstack(
            full_resolution(),
            rx.button(
                "Remove another background", variant="soft", size="3", on_click=RemoveState.reset_page,
                id="another-button", class_name="pick-file",
            ),  # fmt: skip
            rx.text(
                "Free preview: ", RemoveState.result_size, " px, made in ", RemoveState.seconds, " s.",
                size="2",
                color_scheme="gray",
            ),
            align="center",
            spacing="3",
            wrap="wrap",
            class_name="action-row",
            width="100%",
        ),
        width="100%",
        spacing="4",
    )


# Behind batch thumbnails, so transparent parts show as such.
CHECKERBOARD = {
    "background_color": "white",
    "background_image": (
        "linear-gradient(45deg, #d4d4d8 25%, transparent 25%), linear-gradient(-45deg, #d4d4d8 25%, transparent 25%),"
        " linear-gradient(45deg, transparent 75%, #d4d4d8 75%), linear-gradient(-45deg, transparent 75%, #d4d4d8 75%)"
    ),
    "background_size": "20px 20px",
    "background_position": "0 0, 0 10px, 10px -10px, -10px 0px",
}


STATUS_COLOURS = (("done", "green"), ("failed", "red"), ("processing", "blue"), ("cancelled", "gray"))


def _change_chosen(update: str, *uses: rx.Var) -> rx.Var:
    """A change to the photos chosen for the batch, which stay in the browser (rx.upload's `filesById`)
    until "Start": `update` is a JavaScript expression of `chosen` (the list now) and `args` (the trigger's)."""
    key = f'"{BATCH_UPLOAD_ID}"'
    return rx.Var(
        _js_expr=f"((...args) => setFilesById((byId) => ({{...byId, [{key}]: ((chosen) => {update})(byId[{key}] || [])}})))",
        _var_type=EventChain,
        _var_data=VarData.merge(get_upload_files_context_var_data(), *(use._get_all_var_data() for use in uses)),
    )


def _add_to_chosen(upload_id: str) -> rx.Var:
    """A drop adds its photos to those chosen (a photo chosen twice counts once)."""
    same = "(a, b) => a.name === b.name && a.size === b.size && a.lastModified === b.lastModified"
    return _change_chosen(f"[...chosen, ...args[0].filter((file) => !chosen.some((old) => ({same})(old, file)))]")


def batch_drop_zone() -> rx.Component:
    """Photos dropped or picked here are added to those chosen; nothing is sent before "Start". (rx.upload's
    own trigger, `upload_file`, would replace them, and it takes no other trigger without sending.)"""
    settings = get_settings()
    default, upload_module.upload_file = upload_module.upload_file, _add_to_chosen
    try:
        return _batch_upload(settings)
    finally:
        upload_module.upload_file = default


def _batch_upload(settings) -> rx.Component:
    return rx.upload(
        rx.vstack(
            rx.icon("images", size=40),
            rx.text("Drop many photos here, or click to choose them", weight="medium"),
            rx.text(f"Up to {settings.batch_max_items} images · {SUPPORTED}", size="2", color_scheme="gray"),
            align="center",
            spacing="2",
        ),
        id=BATCH_UPLOAD_ID,
        class_name="batch-drop",
        accept=ACCEPT,
        multiple=True,
        max_files=settings.batch_max_items,
        max_size=settings.max_upload_bytes,
        on_drop_rejected=lambda rejections: BatchState.drop_rejected(rejection_codes(rejections)),
        border="2px dashed var(--gray-7)",
        border_radius="12px",
        padding="2em",
        width="100%",
        cursor="pointer",
    )


def chosen_photos() -> rx.Component:
    """The photos chosen, each with "Remove", and before anything starts what they cost against the
    balance ("N images x price = X credits; your balance is Y"), with "Get credits" when it is short."""
    chosen = rx.selected_files(BATCH_UPLOAD_ID)
    count = chosen.length()
    total = count * BatchState.each_units
    singular = (total == UNITS_PER_CREDIT) | ((total > 0) & (total < UNITS_PER_CREDIT))  # as wording.plural
    short = total > BatchState.balance_units
    return rx.vstack(
        rx.hstack(
            rx.text(
                count.to_string(), rx.cond(count == 1, " image", " images"), " x ", BatchState.each_label, " = ",
                (total / UNITS_PER_CREDIT).to_string(), rx.cond(singular, " credit", " credits"), "; your balance is ",
                BatchState.balance_label, ".", size="2", weight="medium", id="batch-cost",
            ),  # fmt: skip
            rx.cond(short, get_credits_link(id="batch-cost-get-credits")),
            align="center",
            wrap="wrap",
        ),
        rx.flex(
            rx.foreach(
                chosen,
                lambda name, index: rx.badge(
                    name,
                    rx.icon_button(rx.icon("x", size=12), size="1", variant="ghost", aria_label="Remove " + name,
                                   on_click=_change_chosen(f"chosen.filter((_, at) => at !== {index})", index)),  # fmt: skip
                    size="2", variant="surface", class_name="batch-chosen",
                ),  # fmt: skip
            ),
            wrap="wrap",
            gap="2",
        ),
        rx.hstack(
            rx.button(
                rx.icon("play"), "Start batch", size="3", id="batch-start", disabled=short | BatchState.uploading,
                on_click=[  # the event takes the files with it; the choice then starts afresh
                    BatchState.handle_batch_upload(
                        rx.upload_files(upload_id=BATCH_UPLOAD_ID, on_upload_progress=BatchState.upload_progress)
                    ),
                    rx.clear_selected_files(BATCH_UPLOAD_ID),
                ],
            ),  # fmt: skip
            rx.button("Clear", size="3", variant="soft", id="batch-clear", on_click=rx.clear_selected_files(BATCH_UPLOAD_ID)),
            spacing="3",
            wrap="wrap",
            class_name="action-row",
        ),
        width="100%",
        spacing="2",
        id="batch-chosen",
    )


def batch_row(item: rx.Var) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.hstack(
                rx.cond(
                    item["thumb"] != "",
                    rx.image(src=item["thumb"], alt=item["name"], width="48px", height="48px", object_fit="contain",
                             style=CHECKERBOARD, border_radius="4px", class_name="batch-thumb"),  # fmt: skip
                ),
                rx.text(item["name"]),
                rx.cond(item["download"] != "", rx.link("Download", href=item["download"], size="1", class_name="batch-item-download")),
                align="center",
                wrap="wrap",
            )
        ),
        rx.table.cell(
            rx.hstack(
                rx.cond(item["status"] == "processing", rx.spinner(size="1")),
                rx.badge(item["status"], color_scheme=rx.match(item["status"], *STATUS_COLOURS, "gray")),
                align="center",
            )
        ),
        rx.table.cell(item["message"], color_scheme="red"),
        class_name="batch-item",
        custom_attrs={"data-status": item["status"]},
    )


def batch_queue() -> rx.Component:
    return rx.vstack(
        rx.hstack(
            rx.text(
                BatchState.done_count.to_string() + " done, " + BatchState.failed_count.to_string() + " failed of "
                + BatchState.items.length().to_string() + " · " + BatchState.credits_charged + " credits charged",
                id="batch-summary",
            ),  # fmt: skip
            rx.progress(value=BatchState.finished_percent, width="12em"),
            align="center",
            spacing="3",
        ),
        rows_table(BatchState.items, ("File", "Status", "Message"), batch_row),
        rx.hstack(
            rx.button(
                rx.icon("download"), "Download all as ZIP", size="3", id="batch-download",
                disabled=BatchState.done_count == 0, on_click=rx.download(url=BatchState.zip_url),
            ),  # fmt: skip
            rx.cond(
                (BatchState.retryable_count > 0) & ~BatchState.running,
                rx.button("Retry failed", variant="outline", size="3", id="batch-retry", on_click=BatchState.retry_failed),
            ),
            rx.button("New batch", variant="soft", size="3", on_click=BatchState.new_batch),
            spacing="3",
            wrap="wrap",
            class_name="action-row",
        ),
        width="100%",
        spacing="3",
    )


def recent_batches() -> rx.Component:
    """The last day's batches and their ZIPs, so a reload or another tab loses nothing."""
    return rx.vstack(
        rx.heading(f"Recent batches ({RECENT_HOURS} h)", size="4"),
        rows_table(
            BatchState.recent,
            ("Started", "Images", "Results"),
            lambda batch: rx.table.row(
                rx.table.cell(batch["when"]),
                rx.table.cell(batch["summary"]),
                rx.table.cell(rx.cond(batch["zip"] != "", rx.link("ZIP", href=batch["zip"]), "none")),
            ),
            empty="No batches in the last day.",
            id="recent-batches",
        ),
        width="100%",
    )


def batch_mode() -> rx.Component:
    """Signed-in accounts only: each image is charged like an API call."""
    return rx.cond(
        SessionState.signed_in,
        rx.vstack(
            rx.text("Each image is charged like an API call; failed images cost nothing. Results are kept for "
                    f"{get_settings().batch_retention_hours} hours.", size="2", color_scheme="gray"),  # fmt: skip
            rx.hstack(
                rx.text("Result size", size="2"),
                rx.select(list(SIZES), value=BatchState.size_label, on_change=BatchState.set_size_label, id="batch-size"),
                align="center",
            ),
            rx.text(BatchState.price_line, size="2", id="batch-price"),
            batch_drop_zone(),
            rx.cond(rx.selected_files(BATCH_UPLOAD_ID).length() > 0, chosen_photos()),
            rx.cond(
                BatchState.error != "",
                rx.callout(
                    rx.hstack(
                        rx.text(BatchState.error),
                        rx.cond(BatchState.short_of_credits, get_credits_link(id="batch-get-credits")),
                        align="center", wrap="wrap",
                    ),  # fmt: skip
                    icon="triangle-alert", color_scheme="red", id="batch-error", width="100%",
                ),  # fmt: skip
            ),
            rx.cond(BatchState.uploading, rx.text(f"Uploading… {BatchState.uploaded_percent}%", id="batch-uploading")),
            rx.cond(BatchState.items.length() > 0, batch_queue()),
            recent_batches(),
            width="100%",
            spacing="3",
            on_mount=BatchState.load,
        ),
        rx.callout.root(
            rx.callout.icon(rx.icon("info")),
            rx.callout.text(
                "Batch mode is for signed-in accounts, because each image is charged like an API call "
                "(0.25 credit for a preview, 1 credit at full size). ",
                rx.link("Sign in", href="/login?next=/"),
                " to use it, or drop one photo at a time on the first tab for a free preview.",
            ),
            id="batch-sign-in",
            width="100%",
        ),
    )


def single_mode() -> rx.Component:
    return rx.vstack(
        drop_zone(),
        rx.box(  # hidden, not gone, while a result shows: a pasted address still goes through the field
            url_field(), samples(), display=rx.cond(RemoveState.stage == "done", "none", "flex"), flex_direction="column",
            gap="1em", width="100%",
        ),
        rx.cond(
            RemoveState.error != "",
            rx.callout(RemoveState.error, icon="triangle-alert", color_scheme="red", id="error-message", width="100%"),
        ),
        rx.cond((RemoveState.stage == "uploading") | (RemoveState.stage == "fetching") | (RemoveState.stage == "working"), progress()),
        rx.cond(RemoveState.stage == "done", results()),
        width="100%",
        spacing="4",
    )


def input_helpers() -> rx.Component:
    """Paste anywhere, drop anywhere, several files on "One photo": `assets/clearbg-input.js` reads
    who may batch from here."""
    return rx.fragment(
        rx.box(id="input-helpers", custom_attrs={"data-signed-in": rx.cond(SessionState.signed_in, "yes", "no")}, display="none"),
        rx.script(src="/clearbg-input.js"),
    )


@route("/", "ClearBG: remove image backgrounds")
def index() -> rx.Component:
    return page(
        input_helpers(),
        rx.heading("Remove the background of any photo", size="8"),
        rx.text("Drop an image: ClearBG finds the subject and gives you a transparent PNG in seconds."),
        rx.tabs.root(
            rx.tabs.list(
                rx.tabs.trigger("One photo", value="single", id="single-tab"),
                rx.tabs.trigger("Batch", value="batch", id="batch-tab"),
            ),
            rx.tabs.content(single_mode(), value="single", padding_top="1em"),
            rx.tabs.content(batch_mode(), value="batch", padding_top="1em"),
            default_value="single",
            width="100%",
        ),
    )
