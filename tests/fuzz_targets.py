"""Coverage-guided fuzz targets (atheris, libFuzzer's engine) for what reads untrusted input before
any work starts: the image decoder (with Pillow's plugins instrumented, so the fuzzer steers by
their branches) and the parameter parser (remove.bg's options, base64 images, JSON bodies, URLs).
A target fails on any exception other than the clean error its caller turns into a 4xx.

    python -m tests.fuzz_targets decode -runs=4000 -seed=1 SEED_DIR

`tests/test_fuzz.py` runs both, bounded by a run count and seeded, in a subprocess."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["PIL", "pillow_heif", "clearbg_app"]):
    from clearbg_app.api.v1.params import decode_b64, json_object, json_text
    from clearbg_app.http.removebg_params import ParameterError, removal_options
    from clearbg_app.inference.decode import decode_image
    from clearbg_app.inference.errors import ImageDecodeError
    from clearbg_app.services.removal import InvalidOption, Sized, roi_box
    from clearbg_app.services.url_fetch import UrlRefused, parse_url

MAX_PIXELS = 4_000_000  # small: the fuzzer should spend its time in headers, not in big pixel loops
PARAMETERS = (
    "size", "type", "format", "channels", "bg_color", "crop", "crop_margin", "scale", "position", "roi",
    "bg_blur", "shadow", "add_shadow", "shadow_opacity", "shadow_blur", "shadow_offset",
)  # fmt: skip
SIZED = Sized(source=(770, 595), output=(568, 439), size_name="preview", units=25)


def decode(data: bytes) -> None:
    try:
        decode_image(data, max_pixels=MAX_PIXELS)
    except ImageDecodeError:
        pass


def params(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    given = {name: provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 40)) for name in PARAMETERS if provider.ConsumeBool()}
    rest = provider.ConsumeUnicodeNoSurrogates(200)
    try:
        options = removal_options(given, None, models=("u2net", "u2netp"))
        if options.roi:
            roi_box(options.roi, SIZED)
    except (ParameterError, InvalidOption):
        pass
    for check, refusal in ((lambda: decode_b64(rest, "image_file_b64"), ParameterError), (lambda: parse_url(rest), UrlRefused)):
        try:
            check()
        except refusal:
            pass
    try:
        body = json_object(rest.encode())
        for name, value in body.items():
            json_text(name, value)
    except ParameterError:
        pass


if __name__ == "__main__":
    target = {"decode": decode, "params": params}[sys.argv.pop(1)]
    atheris.Setup(sys.argv, target)
    atheris.Fuzz()
