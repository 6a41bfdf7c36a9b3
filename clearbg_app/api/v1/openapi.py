"""The API's description, written once: the OpenAPI 3 document (`/api/openapi.json`), the plain HTML
reference (`/api/docs`, no scripts, no CDN) and the `/docs/api` page all read these tables."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from clearbg_app.http.removebg_params import CHANNELS, FORMATS, SIZE_NAMES, TYPES
from clearbg_app.inference.decode import SUPPORTED
from clearbg_app.settings import get_settings

# name, schema, description
PARAMETERS: list[tuple[str, dict, str]] = [
    ("image_file", {"type": "string", "format": "binary"}, f"The image (multipart upload): {SUPPORTED}. Send exactly one of image_file, image_file_b64, image_url."),
    ("image_file_b64", {"type": "string"}, "The image as base64 (a data: URL works too)."),
    ("image_url", {"type": "string", "format": "uri"}, "An http(s) URL to download the image from; private and local addresses are refused."),
    ("size", {"type": "string", "enum": list(SIZE_NAMES), "default": "preview"},
     "preview/small/regular: up to 0.25 megapixels, 0.25 credit. full/4k/50mp: the input's size, 1 credit (0.25 if it is "
     "small). medium (1.5 MP), hd (4 MP): 1 credit. auto: full when your balance covers it, else preview."),
    ("type", {"type": "string", "enum": list(TYPES), "default": "auto"},
     "Accepted for compatibility; any foreground is found. X-Type echoes it, or says 'other' for auto."),
    ("format", {"type": "string", "enum": list(FORMATS), "default": "auto"},
     "auto: PNG when the result has transparency, else JPG. zip: color.jpg plus alpha.png."),
    ("channels", {"type": "string", "enum": list(CHANNELS), "default": "rgba"}, "alpha: only the mask, as a greyscale PNG."),
    ("bg_color", {"type": "string"}, "Background colour: hex (81d4fa, fff, with a 4th/8th digit pair for opacity: 81d4fa77) or a name (green)."),
    ("bg_image_file", {"type": "string", "format": "binary"}, "A background image, scaled to cover the result."),
    ("bg_image_url", {"type": "string", "format": "uri"}, "A background image by URL (same rules as image_url)."),
    ("bg_blur", {"type": "string", "default": "0"},
     "ClearBG extension: the original photo, blurred, behind the subject; strength 0 (off) to 100 (a radius of a tenth of the "
     "image's longer side). Not with bg_color or a background image."),
    ("shadow", {"type": "boolean", "default": False},
     "ClearBG extension: a soft drop shadow under the subject (png, webp, jpg; not zip or channels=alpha). remove.bg's "
     "add_shadow=true gives the same default shadow (50% opacity, blur 20, offset 1% 2%)."),
    ("add_shadow", {"type": "boolean", "default": False}, "remove.bg's name for shadow=true."),
    ("shadow_opacity", {"type": "string", "default": "50%"}, "ClearBG extension: the shadow's opacity, 0% to 100%; implies shadow=true."),
    ("shadow_blur", {"type": "string", "default": "20"}, "ClearBG extension: the shadow's softness, 0 to 100 (the bg_blur scale); implies shadow=true."),
    ("shadow_offset", {"type": "string", "default": "1% 2%"},
     "ClearBG extension: how far the shadow falls, 'x y' in % of the longer side (right and down positive), each -20% to 20%; implies shadow=true."),
    ("crop", {"type": "boolean", "default": False}, "Crop the result to the subject."),
    ("crop_margin", {"type": "string"},
     "With crop: margin around the subject, 1, 2 or 4 values (CSS order) in px or % of the subject; at most 500px or 50%."),
    ("scale", {"type": "string"}, "The subject's size relative to the image, 10% to 100%, or original (default). Implies position=center."),
    ("position", {"type": "string"}, "original (default), center, or one or two percentages (horizontal, vertical) for the subject's centre."),
    ("roi", {"type": "string"}, "Region of interest 'x1 y1 x2 y2' in px or % of the input (it must overlap the image); outside it everything is background."),
    ("model", {"type": "string", "example": "u2net"},
     "ClearBG extension (not in remove.bg's API): the segmentation model, u2net (default, best cut-outs) or u2netp "
     "(about 3x faster, coarser), or another model installed on this server; an unknown name gets a 400 that lists "
     "the available ones. The price does not depend on the model."),
]

RESULT_HEADERS = {
    "X-Credits-Charged": "Credits charged for this call (0.25 or 1).",
    "X-Width": "Width of the result in pixels.",
    "X-Height": "Height of the result in pixels.",
    "X-Type": "The requested type, or 'other'.",
    "X-Foreground-Top": "Top of the subject's bounding box in the result.",
    "X-Foreground-Left": "Left of the subject's bounding box.",
    "X-Foreground-Width": "Width of the subject's bounding box.",
    "X-Foreground-Height": "Height of the subject's bounding box.",
}
RATE_HEADERS = {
    "X-RateLimit-Limit": "Megapixel images allowed per minute (per key; per IP before the key is known).",
    "X-RateLimit-Remaining": "What is left of it in the current moving minute.",
    "X-RateLimit-Reset": "Unix time when the window has room again.",
}
ERRORS = [
    (400, "invalid_parameter, missing_source, multiple_sources, invalid_image, url_refused, url_fetch_failed, too_many_items, webhook_refused, incomplete_request",
     "Bad parameters, a file that is not a readable image of a supported format, or a request cut off mid-body."),
    (402, "insufficient_credits", "The balance does not cover the price."),
    (403, "auth_failed", "X-Api-Key missing, unknown or revoked."),
    (404, "not_found", "No such batch (or not yours, or expired)."),
    (409, "batch_not_ready", "result.zip asked for before any item of the batch is done; wait Retry-After seconds."),
    (413, "file_too_large", "The file, the body or the image's pixel count is over the limit."),
    (429, "rate_limit_exceeded", "Rate limited; wait Retry-After seconds."),
    (503, "server_busy", "The inference queue is full; wait Retry-After seconds."),
]

CURL_EXAMPLE = """curl -H 'X-Api-Key: YOUR_KEY' \\
     -F 'image_file=@/path/to/photo.jpg' -F 'size=auto' \\
     --fail-with-body {base}/api/v1.0/removebg -o no-bg.png
# On an error the JSON explanation lands in no-bg.png and curl exits non-zero: cat no-bg.png"""
PYTHON_EXAMPLE = """import requests

response = requests.post(
    "{base}/api/v1.0/removebg",
    files={{"image_file": open("/path/to/photo.jpg", "rb")}},
    data={{"size": "auto"}},
    headers={{"X-Api-Key": "YOUR_KEY"}},
)
if response.status_code == requests.codes.ok:
    with open("no-bg.png", "wb") as out:
        out.write(response.content)
else:
    print("Error:", response.status_code, response.json()["errors"])"""


# What each operation answers, shown beside it in /docs/api and /api/docs (tests check them against the real answers).
EXAMPLE_RESPONSES = {
    "removebg": """HTTP/1.1 200 OK
Content-Type: image/png
X-Credits-Charged: 0.25
X-Width: 400
X-Height: 309
X-RateLimit-Remaining: 499

<the PNG image>""",
    "removebg_error": """HTTP/1.1 402 Payment Required
Content-Type: application/json

{"errors": [{"title": "Insufficient credits", "code": "insufficient_credits",
  "detail": "Insufficient credits: this costs 0.25 credits and your balance is 0."}]}""",
    "account": """HTTP/1.1 200 OK
Content-Type: application/json

{"data": {"attributes": {"credits": {"total": 12.5, "subscription": 0, "payg": 0, "enterprise": 0},
                         "api": {"free_calls": 50, "sizes": "all"}}}}""",
    "batch": """HTTP/1.1 202 Accepted
Location: /api/v1.0/batches/6f1c...
Content-Type: application/json

{"data": {"id": "6f1c...", "status": "running", "counts": {"queued": 2, "processing": 0, "done": 0, "failed": 0, "cancelled": 0},
          "credits_charged": "0", "result_url": "/api/v1.0/batches/6f1c.../result.zip",
          "items": [{"id": "...", "position": 1, "filename": "cat.jpg", "source": "file", "status": "queued", "credits_charged": "0"}]}}""",
}

BATCH_NOTES = [
    "POST /api/v1.0/batches takes many images at once: repeated image_file parts and/or image_url (or image_file_b64) "
    "fields, or JSON with image_urls and images_b64 lists (strings, or {{filename, data}} objects), plus the same options "
    "as /removebg and an optional webhook_url. It answers 202 with the batch and a Location header.",
    "Limits: {max_items} images and {max_mb:g} MB of uploads per batch (400 too_many_items, 413 file_too_large); "
    "a malformed base64 image or a bad option refuses the whole batch (400) and stores nothing.",
    "Each image is an item: queued, processing, done, failed or cancelled. A failed item carries errors in the same "
    "shape as /removebg's and is never charged; done items cost what /removebg would. An item your balance cannot "
    "cover fails with insufficient_credits (402) and the other items go on.",
    "Items run one at a time, only when the server has an idle worker: single /removebg calls are never delayed by batches.",
    "GET .../result.zip streams the finished items under their original names (the result's extension; repeated "
    "names get ' (2)'). Before any item is done it answers 409 batch_not_ready with Retry-After; a finished batch "
    "without results gives an empty ZIP. DELETE cancels the items not started yet. Results are kept for "
    "{hours} hours after the batch finishes.",
    "Webhook: when the batch finishes, its summary is POSTed to webhook_url as {{\"type\": \"batch.completed\", \"data\": ...}} "
    "with the header ClearBG-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\"> keyed by your signing "
    "secret (GET /api/v1.0/webhook_secret). Any answer other than 2xx is retried after "
    "1 min, 5 min, 30 min, 2 h and 12 h. webhook_url must be public: private, local and metadata addresses are refused (400 webhook_refused).",
]
BATCH_CURL_EXAMPLE = """curl -H 'X-Api-Key: YOUR_KEY' \\
     -F 'image_file=@cat.jpg' -F 'image_file=@dog.jpg' -F 'image_url=https://example.com/bird.jpg' \\
     -F 'size=auto' -F 'webhook_url=https://example.com/clearbg-hook' \\
     {base}/api/v1.0/batches
# -> 202 {{"data": {{"id": "...", "status": "running", "items": [...]}}}}
curl -H 'X-Api-Key: YOUR_KEY' {base}/api/v1.0/batches/BATCH_ID
curl -H 'X-Api-Key: YOUR_KEY' --fail-with-body -o results.zip {base}/api/v1.0/batches/BATCH_ID/result.zip"""
BATCH_PYTHON_EXAMPLE = """import time, requests

headers = {{"X-Api-Key": "YOUR_KEY"}}
paths = ["cat.jpg", "dog.jpg"]
response = requests.post(
    "{base}/api/v1.0/batches",
    files=[("image_file", open(path, "rb")) for path in paths],
    data={{"size": "auto"}},
    headers=headers,
)
response.raise_for_status()  # 202
batch_url = "{base}" + response.headers["Location"]
while (batch := requests.get(batch_url, headers=headers).json()["data"])["status"] != "done":
    time.sleep(2)
for item in batch["items"]:
    print(item["filename"], item["status"], item.get("errors", ""))
with open("results.zip", "wb") as out:
    out.write(requests.get(batch_url + "/result.zip", headers=headers).content)"""
WEBHOOK_VERIFY_EXAMPLE = """import hashlib, hmac, time

def verify_clearbg_webhook(secret: str, signature_header: str, raw_body: bytes, tolerance: int = 300) -> bool:
    \"\"\"secret: whsec_... from GET /api/v1.0/webhook_secret; signature_header: the ClearBG-Signature header.\"\"\"
    fields = dict(part.split("=", 1) for part in signature_header.split(",") if "=" in part)
    timestamp, received = fields.get("t", ""), fields.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False  # too old (or from the future): refuse replays
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, received)"""


def batch_notes() -> list[str]:
    """The batch rules with this server's limits."""
    settings = get_settings()
    return [note.format(max_items=settings.batch_max_items, max_mb=settings.batch_max_bytes / 1e6, hours=settings.batch_retention_hours) for note in BATCH_NOTES]


def _headers(described: dict[str, str]) -> dict:
    return {name: {"description": text, "schema": {"type": "string"}} for name, text in described.items()}


def _error(description: str, retry: bool = False) -> dict:
    headers = _headers(RATE_HEADERS) | (_headers({"Retry-After": "Seconds to wait."}) if retry else {})
    return {"description": description, "headers": headers, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}


def openapi_document() -> dict:
    """The OpenAPI 3.1 description of the public API."""
    properties = {name: {**schema, "description": text} for name, schema, text in PARAMETERS}
    text_properties = {name: schema for name, schema in properties.items() if schema.get("format") != "binary"}
    errors = {str(status): _error(f"{codes}: {text}", retry=status in (409, 429, 503)) for status, codes, text in ERRORS}
    single_errors = {status: errors[status] for status in ("400", "402", "403", "413", "429", "503")}
    result_json = {
        "type": "object",
        "properties": {"data": {"type": "object", "properties": {
            "result_b64": {"type": "string"}, "foreground_top": {"type": "integer"}, "foreground_left": {"type": "integer"},
            "foreground_width": {"type": "integer"}, "foreground_height": {"type": "integer"}}}},
    }  # fmt: skip
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "ClearBG API", "version": "1.0", "description": "Background removal, compatible with remove.bg's API v1.0.\n\n"
                 "Batch jobs:\n\n" + "\n\n".join(batch_notes()) + "\n\nVerifying a webhook in Python:\n\n```python\n" + WEBHOOK_VERIFY_EXAMPLE + "\n```"},
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
            "schemas": {
                "Batch": BATCH_SCHEMA,
                "Errors": {"type": "object", "properties": {"errors": {"type": "array", "items": {"type": "object", "properties": {
                    "title": {"type": "string"}, "code": {"type": "string"}, "detail": {"type": "string"}}}}}},
            },  # fmt: skip
        },
        "servers": [{"url": get_settings().public_url.rstrip("/")}],
        "security": [{"ApiKey": []}],
        "paths": {
            "/api/v1.0/removebg": {
                "post": {
                    "summary": "Remove the background of an image",
                    "requestBody": {"required": True, "content": {
                        "multipart/form-data": {"schema": {"type": "object", "properties": properties}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": text_properties}},
                        "application/json": {"schema": {"type": "object", "properties": text_properties}}}},  # fmt: skip
                    "responses": {
                        "200": {
                            "description": "The result image, or JSON with result_b64 when Accept: application/json.",
                            "headers": _headers(RESULT_HEADERS | RATE_HEADERS),
                            "content": {"image/png": binary, "image/jpeg": binary, "image/webp": binary,
                                        "application/zip": binary, "application/json": {"schema": result_json}},  # fmt: skip
                        },
                        **single_errors,
                    },
                }
            },
            **batch_paths(properties, errors),
            "/api/v1.0/account": {
                "get": {
                    "summary": "Credits and free API calls of the key's account",
                    "responses": {
                        "200": {"description": "data.attributes.credits {total, subscription, payg, enterprise}; data.attributes.api {free_calls, sizes}",
                                "headers": _headers(RATE_HEADERS), "content": {"application/json": {"schema": {"type": "object"}}}},  # fmt: skip
                        "403": errors["403"],
                        "429": errors["429"],
                    },
                }
            },
        },
    }


_ERRORS_SCHEMA = {"type": "array", "items": {"type": "object", "properties": {
    "title": {"type": "string"}, "code": {"type": "string"}, "detail": {"type": "string"}}}}  # fmt: skip
BATCH_SCHEMA = {
    "type": "object",
    "properties": {"data": {"type": "object", "properties": {
        "id": {"type": "string", "format": "uuid"},
        "status": {"type": "string", "enum": ["running", "done"]},
        "created_at": {"type": "string", "format": "date-time"},
        "finished_at": {"type": ["string", "null"], "format": "date-time"},
        "expires_at": {"type": "string", "format": "date-time"},
        "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        "credits_charged": {"type": "string"},
        "result_url": {"type": "string"},
        "webhook": {"type": "object", "properties": {"url": {"type": ["string", "null"]}, "status": {"type": "string"}, "attempts": {"type": "integer"}}},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "string"}, "position": {"type": "integer"}, "filename": {"type": "string"},
            "source": {"type": "string", "enum": ["file", "url"]},
            "status": {"type": "string", "enum": ["queued", "processing", "done", "failed", "cancelled"]},
            "credits_charged": {"type": "string"}, "zip_name": {"type": "string"}, "width": {"type": "integer"},
            "height": {"type": "integer"}, "errors": _ERRORS_SCHEMA}}},
    }}},
}  # fmt: skip


def batch_paths(properties: dict, errors: dict) -> dict:
    """The batch routes: the same options as /removebg, the images as lists."""
    options = {name: schema for name, schema in properties.items() if not name.startswith("image_")}
    text_options = {name: schema for name, schema in options.items() if schema.get("format") != "binary"}
    webhook = {"webhook_url": {"type": "string", "format": "uri", "description": "Gets a signed POST when the batch finishes."}}
    form = {
        "image_file": {"type": "array", "items": {"type": "string", "format": "binary"}, "description": "The images (repeat the part)."},
        "image_url": {"type": "array", "items": {"type": "string", "format": "uri"}, "description": "Image URLs (repeat the field)."},
        **options, **webhook,
    }  # fmt: skip
    body = {
        "images_b64": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {
            "filename": {"type": "string"}, "data": {"type": "string"}}, "required": ["data"]}]}},
        "image_urls": {"type": "array", "items": {"type": "string", "format": "uri"}},
        **text_options, **webhook,
    }  # fmt: skip
    batch = {"description": "The batch.", "headers": _headers(RATE_HEADERS), "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}}}
    path_id = [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}]
    known = {status: errors[status] for status in ("403", "404", "429")}
    return {
        "/api/v1.0/batches": {"post": {
            "summary": "Queue many images with one set of options",
            "description": "\n\n".join(batch_notes()),
            "requestBody": {"required": True, "content": {
                "multipart/form-data": {"schema": {"type": "object", "properties": form}},
                "application/json": {"schema": {"type": "object", "properties": body}}}},
            "responses": {"202": {**batch, "description": "Queued; Location is the batch's URL.",
                                  "headers": _headers(RATE_HEADERS | {"Location": "The batch's URL."})},
                          **{status: errors[status] for status in ("400", "403", "413", "429")}},
        }},
        "/api/v1.0/batches/{batch_id}": {
            "get": {"summary": "The batch: per-item status, errors and credits", "parameters": path_id, "responses": {"200": batch, **known}},
            "delete": {"summary": "Cancel the items not started yet", "parameters": path_id, "responses": {"200": batch, **known}},
        },
        "/api/v1.0/batches/{batch_id}/result.zip": {"get": {
            "summary": "The finished items as a ZIP, under their original names", "parameters": path_id,
            "responses": {"200": {"description": "A ZIP archive (streamed).", "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                          "409": errors["409"], **known},
        }},
        "/api/v1.0/webhook_secret": {"get": {
            "summary": "Your webhook signing secret",
            "responses": {"200": {"description": "data.signing_secret (whsec_...) and data.header (ClearBG-Signature)",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}, "403": errors["403"], "429": errors["429"]},
        }},
    }  # fmt: skip


def docs_html(base: str) -> str:
    """The reference as one self-contained HTML page in the site's colours, examples first (no scripts:
    the copy buttons are on /docs/api)."""
    esc = html.escape
    rows = "".join(f"<tr><td><code>{esc(n)}</code></td><td>{esc(', '.join(s.get('enum', [])) or s['type'])}</td><td>{esc(t)}</td></tr>" for n, s, t in PARAMETERS)
    headers = "".join(f"<tr><td><code>{esc(n)}</code></td><td>{esc(t)}</td></tr>" for n, t in (RESULT_HEADERS | RATE_HEADERS).items())
    errors = "".join(f"<tr><td>{status}</td><td><code>{esc(codes)}</code></td><td>{esc(text)}</td></tr>" for status, codes, text in ERRORS)
    batch = "".join(f"<p>{esc(note)}</p>" for note in batch_notes())
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>ClearBG API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:-apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,system-ui,sans-serif;max-width:60rem;margin:0 auto;
padding:0 1rem 3rem;line-height:1.55;color:#1c2024}}a{{color:#6550b9}}h1,h2,h3{{line-height:1.25}}h2{{margin-top:2.2rem}}
header{{display:flex;justify-content:space-between;align-items:center;padding:1rem 0 .5rem;flex-wrap:wrap;gap:.5rem}}
header a.brand{{font-size:1.5rem;font-weight:700;color:#6550b9;text-decoration:none}}
table{{border-collapse:collapse;width:100%;display:block;overflow-x:auto}}td,th{{border:1px solid #e0e0e6;padding:.35rem .55rem;vertical-align:top;text-align:left}}
pre{{background:#f7f6fd;border:1px solid #e5e1f8;border-radius:10px;padding:1rem;white-space:pre-wrap;overflow-wrap:anywhere}}
code{{overflow-wrap:anywhere}}</style></head><body>
<header><a class="brand" href="/">ClearBG</a><nav><a href="/docs/api">Guide with copy buttons</a> · <a href="/pricing">Pricing</a></nav></header>
<h1>ClearBG API v1.0</h1>
<p>Compatible with remove.bg's API: point a remove.bg client at <code>{esc(base)}/api</code>. Authenticate with the
<code>X-Api-Key</code> header (create keys on your account page). Machine-readable: <a href="/api/openapi.json">openapi.json</a>.</p>
<h2>Examples</h2><pre>{esc(CURL_EXAMPLE.format(base=base))}</pre><pre>{esc(PYTHON_EXAMPLE.format(base=base))}</pre>
<h2>POST /api/v1.0/removebg</h2>
<p>Send multipart/form-data, application/x-www-form-urlencoded or JSON. The answer is the image, or
<code>{{"data": {{"result_b64": ..., "foreground_top": ...}}}}</code> with <code>Accept: application/json</code>.
Errors are never charged.</p>
<table><tr><th>Parameter</th><th>Values</th><th>Meaning</th></tr>{rows}</table>
<h3>Response headers</h3><table>{headers}</table>
<h3>Example response</h3><pre>{esc(EXAMPLE_RESPONSES["removebg"])}</pre><pre>{esc(EXAMPLE_RESPONSES["removebg_error"])}</pre>
<h2>GET /api/v1.0/account</h2><p>Your credits (total, subscription, payg) and free API calls left.</p>
<pre>{esc(EXAMPLE_RESPONSES["account"])}</pre>
<h2>Batch jobs: POST /api/v1.0/batches</h2>{batch}
<pre>{esc(EXAMPLE_RESPONSES["batch"])}</pre>
<pre>{esc(BATCH_CURL_EXAMPLE.format(base=base))}</pre><pre>{esc(BATCH_PYTHON_EXAMPLE.format(base=base))}</pre>
<h3>Verifying a webhook</h3><pre>{esc(WEBHOOK_VERIFY_EXAMPLE)}</pre>
<h2>Errors</h2><p>Shape: <code>{{"errors": [{{"title": ..., "code": ..., "detail": ...}}]}}</code></p>
<table><tr><th>Status</th><th>Codes</th><th>When</th></tr>{errors}</table>
</body></html>"""


async def openapi_json(request: Request) -> JSONResponse:
    return JSONResponse(openapi_document())


async def docs_page(request: Request) -> HTMLResponse:
    return HTMLResponse(docs_html(get_settings().public_url.rstrip("/")))  # one base URL everywhere; CSP: api/headers.py


def docs_routes() -> list[Route]:
    return [Route("/api/openapi.json", openapi_json, methods=["GET"]), Route("/api/docs", docs_page, methods=["GET"])]
