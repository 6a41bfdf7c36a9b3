"""remove.bg's request parameters, read into `RemovalOptions`. Unknown parameter names are ignored (as
remove.bg does); unknown values are refused with a sentence that names the parameter."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from PIL import ImageColor

from clearbg_app.inference.render import DEFAULT_SHADOW, MAX_BLUR, MAX_SHADOW_OFFSET, Shadow
from clearbg_app.services.removal import Length, RemovalOptions

SIZE_NAMES = {
    "preview": "preview", "small": "preview", "regular": "preview",
    "medium": "medium", "hd": "hd",
    "full": "full", "4k": "full", "50mp": "full",
    "auto": "auto",
}  # fmt: skip
TYPES = ("auto", "person", "product", "car", "animal", "graphic", "transportation", "other")
FORMATS = ("auto", "png", "jpg", "webp", "zip")
CHANNELS = ("rgba", "alpha")
MAX_MARGIN_PX, MAX_MARGIN_PERCENT = 500, 50
NUMBER = r"([0-9]{1,6}(?:\.[0-9]{1,6})?)"  # ASCII digits, bounded: no inf, no 10**5000
LENGTH = re.compile(rf"^{NUMBER}(px|%)?$")
PERCENT = re.compile(rf"^{NUMBER}%$")
STRENGTH = re.compile(rf"^{NUMBER}$")
SIGNED_PERCENT = re.compile(rf"^(-?){NUMBER}%$")
SHADOW_PARAMETERS = ("shadow_opacity", "shadow_blur", "shadow_offset")
HEX = re.compile(r"^#?([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$")


class ParameterError(ValueError):
    """A parameter value we cannot use; `str()` says which and why."""


def shown(value: str) -> str:
    """A value quoted for an error message, cut short (values can be megabytes long)."""
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _choice(params: Mapping[str, str], name: str, allowed, default: str) -> str:
    value = (params.get(name) or default).strip().lower()
    if value not in allowed:
        raise ParameterError(f"{name}={shown(value)} is not supported; use one of {', '.join(allowed)}.")
    return value


def _boolean(params: Mapping[str, str], name: str) -> bool:
    value = str(params.get(name, "false")).strip().lower()
    if value not in ("true", "false", "1", "0", ""):
        raise ParameterError(f"{name} must be true or false.")
    return value in ("true", "1")


def _lengths(text: str, name: str, counts: tuple[int, ...], default_unit: str) -> list[Length]:
    parts = text.split()
    if len(parts) not in counts:
        raise ParameterError(f"{name} takes {' or '.join(map(str, counts))} values, got {len(parts)}.")
    lengths = []
    for part in parts:
        match = LENGTH.match(part.lower())
        if not match:
            raise ParameterError(f"{name}: {shown(part)} is not a length like 30px or 10%.")
        lengths.append((float(match[1]), match[2] or default_unit))
    return lengths


def crop_margin(text: str) -> tuple[Length, Length, Length, Length]:
    """1, 2 or 4 lengths (CSS order: top, right, bottom, left); at most 500px or 50% each."""
    values = _lengths(text, "crop_margin", (1, 2, 4), "px")
    for value, unit in values:
        if value > (MAX_MARGIN_PERCENT if unit == "%" else MAX_MARGIN_PX):
            raise ParameterError(f"crop_margin may be at most {MAX_MARGIN_PX}px or {MAX_MARGIN_PERCENT}% per side.")
    if len(values) == 1:
        values *= 4
    elif len(values) == 2:
        values *= 2
    return tuple(values)


def roi(text: str) -> tuple[Length, Length, Length, Length]:
    """x1 y1 x2 y2 in pixels or percent of the input image, with x1 < x2 and y1 < y2 (same units)."""
    values = _lengths(text, "roi", (4,), "px")
    if any(unit == "%" and value > 100 for value, unit in values):
        raise ParameterError("roi percentages must be 0% to 100%.")
    (x1, ux1), (y1, uy1), (x2, ux2), (y2, uy2) = values
    if (ux1 == ux2 and x1 >= x2) or (uy1 == uy2 and y1 >= y2):
        raise ParameterError("roi must be 'x1 y1 x2 y2' with x1 < x2 and y1 < y2.")
    return tuple(values)


def _percent(text: str, name: str) -> float:
    match = PERCENT.match(text)
    if not match or not 0 <= float(match[1]) <= 100:
        raise ParameterError(f"{name}: {shown(text)} must be a percentage from 0% to 100%.")
    return float(match[1]) / 100


def scale(text: str) -> float | None:
    if text in ("", "original"):
        return None
    value = _percent(text, "scale")
    if value < 0.1:
        raise ParameterError("scale must be from 10% to 100%, or original.")
    return value


def position(text: str, scaled: bool) -> tuple[float, float] | None:
    """original, center, one percentage (both axes) or two (horizontal, vertical)."""
    if text in ("", "original"):
        return (0.5, 0.5) if scaled else None
    if text == "center":
        return (0.5, 0.5)
    parts = text.split()
    if len(parts) not in (1, 2):
        raise ParameterError("position takes one or two percentages, center, or original.")
    values = [_percent(part, "position") for part in parts]
    return (values[0], values[-1])


def colour(text: str) -> tuple[tuple[int, int, int], int]:
    """A hex colour (3, 4, 6 or 8 digits; the last of 4 or 8 is the opacity) or a CSS colour name."""
    value = text.strip().lower()
    if match := HEX.match(value):
        digits = match[1]
        if len(digits) in (3, 4):
            digits = "".join(ch * 2 for ch in digits)
        channels = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
        return tuple(channels[:3]), channels[3] if len(channels) == 4 else 255
    try:
        return ImageColor.getrgb(value)[:3], 255
    except ValueError:
        raise ParameterError(f"bg_color={shown(text)} is neither a hex colour (81d4fa, fff8) nor a colour name.") from None


def strength(text: str, name: str) -> float:
    """A blur strength from 0 to 100 (ClearBG's scale: 100 is a radius of a tenth of the longer side)."""
    match = STRENGTH.match(text)
    if not match or float(match[1]) > 100:
        raise ParameterError(f"{name}={shown(text)} must be a number from 0 to 100.")
    return float(match[1]) / 100 * MAX_BLUR


def shadow(params: Mapping[str, str]) -> Shadow | None:
    """`shadow=true` (or remove.bg's `add_shadow=true`) gives the default shadow; `shadow_opacity`
    (0% to 100%), `shadow_blur` (0 to 100) and `shadow_offset` ('x% y%' of the longer side, each
    -20% to 20%) adjust it, and turn it on by themselves."""
    tuned = {name: str(params[name]).strip().lower() for name in SHADOW_PARAMETERS if str(params.get(name) or "").strip()}
    if not (_boolean(params, "shadow") or _boolean(params, "add_shadow") or tuned):
        return None
    opacity, blur, offset = DEFAULT_SHADOW.opacity, DEFAULT_SHADOW.blur, DEFAULT_SHADOW.offset
    if "shadow_opacity" in tuned:
        opacity = _percent(tuned["shadow_opacity"], "shadow_opacity")
    if "shadow_blur" in tuned:
        blur = strength(tuned["shadow_blur"], "shadow_blur")
    if "shadow_offset" in tuned:
        parts = tuned["shadow_offset"].split()
        matches = [SIGNED_PERCENT.match(part) for part in parts]
        limit = MAX_SHADOW_OFFSET * 100
        if len(parts) != 2 or not all(matches) or any(float(match[2]) > limit for match in matches):
            raise ParameterError(f"shadow_offset={shown(tuned['shadow_offset'])} must be two percentages 'x y' from -{limit:g}% to {limit:g}%.")
        offset = tuple((-1 if match[1] else 1) * float(match[2]) / 100 for match in matches)
    return Shadow(opacity=opacity, blur=blur, offset=offset)


def model(params: Mapping[str, str], models: Collection[str]) -> str | None:
    """ClearBG's extension: the model to use, one of `models` (the server's); None for the default."""
    value = str(params.get("model") or "").strip().lower()
    if value and value not in models:
        choices = f"use one of {', '.join(sorted(models))}" if models else "leave it out here"
        raise ParameterError(f"model={shown(value)} is not available; {choices}.")
    return value or None


def removal_options(params: Mapping[str, str], background_image: bytes | None, *, models: Collection[str] = ()) -> RemovalOptions:
    """Every option of one request, checked; `models` are the model names a caller may choose (none:
    the default model only)."""
    size = SIZE_NAMES.get((params.get("size") or "preview").strip().lower())
    if size is None:
        raise ParameterError(f"size={shown(params['size'])} is not supported; use preview, full, auto (or small, regular, medium, hd, 4k).")
    if params.get("bg_color") and background_image is not None:
        raise ParameterError("Send bg_color or a background image, not both.")
    blur_text = str(params.get("bg_blur") or "").strip()
    blur = strength(blur_text, "bg_blur") if blur_text else 0.0
    if blur and (params.get("bg_color") or background_image is not None):
        raise ParameterError("bg_blur blurs the original photo behind the subject; send it without bg_color or a background image.")
    background, opacity = colour(params["bg_color"]) if params.get("bg_color") else (None, 255)
    scaled = scale(str(params.get("scale") or "").strip().lower())
    margin = str(params.get("crop_margin") or "").strip()
    region = str(params.get("roi") or "").strip()
    return RemovalOptions(
        size=size,
        format=_choice(params, "format", FORMATS, "auto"),
        channels=_choice(params, "channels", CHANNELS, "rgba"),
        subject_type=_choice(params, "type", TYPES, "auto"),
        background=background,
        background_opacity=opacity,
        background_image=background_image,
        background_blur=blur,
        shadow=shadow(params),
        crop=_boolean(params, "crop"),
        crop_margin=crop_margin(margin) if margin else None,
        scale=scaled,
        position=position(str(params.get("position") or "").strip().lower(), scaled is not None),
        roi=roi(region) if region else None,
        model=model(params, models),
    )
