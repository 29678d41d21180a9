"""Turn uploaded bytes into a validated RGB picture, and pictures into model inputs.

Every problem a person can cause (wrong kind of file, damaged file, too big, odd shape)
is raised as an ImageError whose message says what happened and what to do next.

Resizing policy, the only one in the project: `fit_to_input` takes the centred square
whose side is `crop_fraction` (0.875) of the shorter side and resizes it to size x size
with bilinear filtering. That is the classic ImageNet evaluation recipe "resize the
shorter side to size / 0.875, then centre-crop size x size", done in a single
`Image.resize(box=...)` call so that a very wide picture never becomes a huge
intermediate. Decode with `min_side=min_side_for(size)` so that JPEG draft decoding
never shrinks a photo below what that crop needs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import logging
import math
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageDraw, ImageOps, features

from classifier import files
from classifier.config import get_settings

CROP_FRACTION = 0.875
MIN_SIDE_PIXELS = 8
MAX_ASPECT_RATIO = 50
THUMBNAIL_QUALITY = 80
# A photo kept to teach from (`reduced_copy`): its shorter side at least this long (more for
# a model whose crop needs more, `photo_side`), as a JPEG of this quality.
PHOTO_MIN_SIDE = 320
PHOTO_QUALITY = 90
_TIMES = " \N{MULTIPLICATION SIGN} "
_MP = 1_000_000
_KB = 1000
_SIZE_UNITS = (("GB", 1000**3), ("MB", 1000**2), ("KB", _KB))  # largest first

# Pillow format id -> the name people know; the order is the order shown in messages.
_FORMAT_NAMES = {
    "PNG": "PNG",
    "JPEG": "JPEG",
    "WEBP": "WebP",
    "BMP": "BMP",
    "GIF": "GIF",
    "TIFF": "TIFF",
    "HEIF": "HEIC",
}
# The Pillow format ids Image.open may try; Pillow's plugins decide which one a file is.
ACCEPTED_PILLOW_FORMATS: tuple[str, ...] = tuple(_FORMAT_NAMES)
ACCEPTED_FORMATS: tuple[str, ...] = tuple(_FORMAT_NAMES.values())
# For the uploader's file picker only; decoding never looks at a file name.
ACCEPTED_EXTENSIONS: tuple[str, ...] = (
    "png",
    "jpg",
    "jpeg",
    "webp",
    "bmp",
    "gif",
    "tif",
    "tiff",
    "heic",
    "heif",
)

# ISO-BMFF brands that make us load pillow-heif, whose plugin Pillow lacks until then.
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
# pillow-heif is built without an AVIF decoder, so AVIF is named but not accepted.
_AVIF_BRANDS = {b"avif", b"avis"}
_QUARTER_TURNS = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_WIDE_GREY_MODES = {"I;16", "I;16L", "I;16B", "I;16N", "I"}
# Bytes Pillow keeps per pixel in each mode (every mode not listed keeps 4).
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
# How each EXIF orientation is undone (as ImageOps.exif_transpose does it).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# A decode holding more than this is heavy: heavy decodes take turns, so that several
# sessions uploading large pictures at once cannot multiply the server's peak memory.
HEAVY_DECODE_BYTES = 32 * 2**20
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
_heavy_decodes = threading.BoundedSemaphore(1)
# Conversions that would copy a whole picture work on bands of rows of about this many pixels.
_BAND_PIXELS = 2**20
# What Pillow and its plugins raise on malformed input (UnidentifiedImageError is an
# OSError). Anything else escaping a decode is our bug, and is logged as one.
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error)
# Plus what one plugin raises on malformed input while loading pixels: libheif reports
# a file it refuses (a broken box, a size past its security limits) as RuntimeError,
# which pillow-heif passes through from load(); the HEIF fuzz test meets one.
_PLUGIN_DECODER_ERRORS: dict[str, tuple[type[Exception], ...]] = {"HEIF": (RuntimeError,)}
_OUR_FAULT = (
    "We could not read this picture because of a problem on our side; it has been logged. "
    "Try another file."
)

_log = logging.getLogger(__name__)


class ImageError(ValueError):
    """A file that is not a picture we can read; the message tells a person what to do.

    Its subclasses say which limit it met, for an HTTP status: `TooLarge` (the file's
    size), `NotAPicture` (its format); any other is a picture that cannot be used
    (damaged, too many pixels, too small).
    """


class TooLarge(ImageError):
    """A file over the size limit (`max_bytes`)."""


class NotAPicture(ImageError):
    """A file in no format the app reads."""


@dataclass(frozen=True)
class DecodedImage:
    """An RGB picture plus facts about the file it came from."""

    image: Image.Image  # RGB, EXIF orientation applied, possibly reduced by JPEG draft
    format: str  # Pillow's id of the format detected from the content, e.g. "JPEG"
    width: int  # size in the file header, after EXIF orientation
    height: int


def content_digest(data: bytes) -> str:
    """Return the sha256 of a file's bytes in hex: the key of a picture's cached answer."""
    return files.sha256_of(data)


def decode_image(
    data: bytes,
    *,
    min_side: int = 256,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> DecodedImage:
    """Decode uploaded bytes into an RGB picture, or raise ImageError saying why not.

    Args:
        data: The whole file.
        min_side: JPEGs are decoded at a reduced scale when their shorter side stays at
            least this long.
        max_bytes: Largest accepted file; defaults to the `max_bytes` setting.
        max_pixels: Largest accepted width * height; defaults to the `max_pixels` setting.
    """
    if min_side < 1:
        raise ValueError(f"Expected min_side >= 1. Received: {min_side}")
    if max_bytes is None:
        max_bytes = get_settings().max_bytes
    if max_pixels is None:
        max_pixels = get_settings().max_pixels
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > max_bytes:
        size, limit = size_text(len(data), round_up=True), size_text(max_bytes)
        raise TooLarge(f"This file is {size}; the limit is {limit}.")
    brands = _ftyp_brands(data)
    if _AVIF_BRANDS.intersection(brands):
        raise _not_a_picture(data)
    if brands and brands[0] in _HEIF_BRANDS:
        _register_heif_opener()
    image = None
    try:
        image = Image.open(io.BytesIO(data), formats=_registered(ACCEPTED_PILLOW_FORMATS))
        width, height = image.size
        _check_dimensions(width, height, max_pixels)  # from the header, nothing decoded yet
        if image.format == "JPEG":
            _request_draft(image, min_side)
        # Pillow holds at most 4 bytes a pixel, so the pixel limit bounds this buffer;
        # every conversion below works on a reduced copy (see _reduce).
        with _turn_if_heavy(decoded_bytes(image)):
            image.load()
            orientation = image.getexif().get(ExifTags.Base.Orientation)
            if orientation in _QUARTER_TURNS:
                width, height = height, width
            reduced = _reduce(image, min_side)
            if reduced is image:
                ImageOps.exif_transpose(image, in_place=True)
            elif orientation in _ORIENTATION_FIX:
                reduced = reduced.transpose(_ORIENTATION_FIX[orientation])
            rgb = _to_rgb(reduced)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        # No warnings filter here: filters are process-wide and Streamlit decodes in several
        # threads. The header check against max_pixels refuses big pictures before decoding;
        # only pictures past twice Pillow's own limit fail earlier, inside Image.open.
        limit = _amount(min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels) / _MP)
        raise ImageError(
            f"This picture has too many pixels to open safely; the limit is {limit} MP."
        ) from exc
    except Exception as exc:
        fmt = image.format if image is not None else None
        if not isinstance(exc, _DECODER_ERRORS + _PLUGIN_DECODER_ERRORS.get(fmt, ())):
            _log.exception("Unexpected error while decoding a %d-byte upload", len(data))
            raise ImageError(_OUR_FAULT) from exc
        # Image.open raises UnidentifiedImageError both for files no accepted plugin
        # claims and for claimed files whose header is broken; tell the two apart.
        fmt = fmt or _claimed_format(data)
        if fmt is None:
            raise _not_a_picture(data) from exc
        raise ImageError(
            f"This {_FORMAT_NAMES[fmt]} file is incomplete or damaged; "
            "try saving or downloading it again."
        ) from exc
    return DecodedImage(image=rgb, format=image.format, width=width, height=height)


def decoded_bytes(image: Image.Image) -> int:
    """Return the memory Pillow takes to hold an opened picture's pixels, before loading it."""
    return image.width * image.height * _BYTES_PER_PIXEL.get(image.mode, 4)


def size_text(size: int, *, round_up: bool = False) -> str:
    """Say a number of bytes as people read it: "7 bytes", "1.5 KB", "20 MB", "2 GB".

    A KB is 1,000 bytes, an MB 1,000 KB and a GB 1,000 MB, as Streamlit's uploader and
    the file managers of macOS and Linux count them, so the page's sentences and the
    uploader's never give one file two sizes. Pass round_up for a file's size and not for
    a limit, so that a file past a limit never reads as equal to it.
    """
    if size < _KB:
        return f"{size:,} byte{'' if size == 1 else 's'}"
    unit, scale = next((unit, scale) for unit, scale in _SIZE_UNITS if size >= scale)
    return f"{_amount(size / scale, round_up=round_up)} {unit}"


def min_side_for(size: int, crop_fraction: float = CROP_FRACTION) -> int:
    """Return the shorter side a picture needs so that `fit_to_input` never upsamples."""
    return math.ceil(size / crop_fraction)


def fit_to_input(image: Image.Image, size: int, crop_fraction: float = CROP_FRACTION) -> np.ndarray:
    """Crop the centred square and resize it to a (size, size, 3) uint8 array."""
    if image.mode != "RGB":
        raise ValueError(f"Expected an RGB image. Received mode: {image.mode}")
    if size < 1 or not 0 < crop_fraction <= 1:
        raise ValueError(
            f"Expected size >= 1 and 0 < crop_fraction <= 1. Received: {size}, {crop_fraction}"
        )
    # Pillow's bilinear filter widens with the scale factor, so downscaling is antialiased.
    box = crop_box(image.width, image.height, crop_fraction)
    resized = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.array(resized, dtype=np.uint8)


def crop_box(
    width: int, height: int, crop_fraction: float = CROP_FRACTION
) -> tuple[float, float, float, float]:
    """Return the centred square `fit_to_input` crops, as (left, top, right, bottom)."""
    side = min(width, height) * crop_fraction
    left, top = (width - side) / 2, (height - side) / 2
    return left, top, left + side, top + side


def outline_crop(
    image: Image.Image, colour: str = "#F0764F", crop_fraction: float = CROP_FRACTION
) -> Image.Image:
    """Return a copy of the picture with the square the network sees outlined."""
    outlined = image.copy()
    line = max(2, round(min(image.size) / 100))
    box = crop_box(*image.size, crop_fraction)
    ImageDraw.Draw(outlined).rectangle(box, outline=colour, width=line)
    return outlined


def make_thumbnail(image: Image.Image, max_side: int = 256) -> bytes:
    """Encode the picture, shrunk to at most `max_side` on its longest side, as WebP (or JPEG)."""
    small = ImageOps.contain(image, (max_side, max_side)) if max(image.size) > max_side else image
    buffer = io.BytesIO()
    if features.check("webp"):
        small.save(buffer, "WEBP", quality=THUMBNAIL_QUALITY)
    else:
        small.convert("RGB").save(buffer, "JPEG", quality=THUMBNAIL_QUALITY)
    return buffer.getvalue()


def photo_side(input_size: int, crop_fraction: float = CROP_FRACTION) -> int:
    """Return the shorter side a photo kept to teach from needs: PHOTO_MIN_SIDE, or more for
    a model whose crop needs more, so that teaching a model of that size never upsamples."""
    return max(PHOTO_MIN_SIDE, min_side_for(input_size, crop_fraction))


def reduced_copy(image: Image.Image, min_side: int = PHOTO_MIN_SIDE) -> bytes:
    """Encode a decoded picture as a JPEG whose shorter side is `min_side`, to teach from later.

    A picture whose shorter side is already at most `min_side` keeps its own size: nothing is
    enlarged. The picture is taken as `decode_image` gives it, its EXIF orientation applied;
    the copy carries no metadata at all (no EXIF: no place, time or camera; no colour
    profile), only the pixels the model saw.
    """
    if min_side < 1:
        raise ValueError(f"Expected min_side >= 1. Received: {min_side}")
    width, height = image.size
    if min(width, height) > min_side:
        if width <= height:
            size = (min_side, max(1, round(height * min_side / width)))
        else:
            size = (max(1, round(width * min_side / height)), min_side)
        copy = image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0).convert("RGB")
    else:
        copy = image.convert("RGB")  # a copy, even of an RGB picture
    copy.info.clear()  # nothing of the file it came from is written
    buffer = io.BytesIO()
    copy.save(buffer, "JPEG", quality=PHOTO_QUALITY)
    return buffer.getvalue()


def photo_copy(data: bytes, decoded: Image.Image, size: tuple[int, int], min_side: int) -> bytes:
    """Return `reduced_copy` of the photo in `data`, made from `decoded` (the same photo as
    classified: maybe reduced by JPEG draft decoding or for display) where that is large
    enough, and otherwise from the bytes, decoded again at the size the copy needs.

    Args:
        size: The photo's own width and height, its orientation applied.

    Raises:
        ImageError: The bytes cannot be decoded again (they were, once: a bug, or memory).
    """
    if min(decoded.size) < min(min_side, *size):
        decoded = decode_image(data, min_side=min_side).image
    return reduced_copy(decoded, min_side)


@functools.cache
def _register_heif_opener() -> None:
    """Teach Pillow to open HEIC the first time one arrives, keeping imports cheap."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def _registered(formats: tuple[str, ...]) -> tuple[str, ...]:
    """Keep the formats Pillow has a plugin for; HEIF has one only once pillow-heif loads."""
    Image.init()  # imports Pillow's own plugins, once
    return tuple(fmt for fmt in formats if fmt in Image.OPEN)


def _claimed_format(data: bytes) -> str | None:
    """Return the accepted format whose Pillow plugin claims these first bytes, if any.

    A file that reads as text is never claimed: Pillow's BMP plugin claims anything that
    starts with "BM", a shopping list included.
    """
    if _looks_like_text(data[:4096].removeprefix(b"\xef\xbb\xbf")):
        return None
    prefix = data[:16]  # what Image.open hands the plugins' accept functions
    for fmt in _registered(ACCEPTED_PILLOW_FORMATS):
        accept = Image.OPEN[fmt][1]
        claim = accept(prefix) if accept else True
        if claim and not isinstance(claim, str):  # a string means "no decoder built in"
            return fmt
    return None


def _not_a_picture(data: bytes) -> ImageError:
    return NotAPicture(
        f"This file is not a picture we can read (detected: {_describe_other(data)}). "
        f"Accepted: {', '.join(ACCEPTED_FORMATS)}."
    )


def _check_dimensions(width: int, height: int, max_pixels: int) -> None:
    """Refuse oversized or absurdly shaped pictures before any pixel is decoded."""
    # Pillow's own bomb limit caps a configured max_pixels that is higher still.
    max_pixels = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    if width * height > max_pixels:
        size, limit = _amount(width * height / _MP, round_up=True), _amount(max_pixels / _MP)
        raise ImageError(
            f"This picture is {width:,}{_TIMES}{height:,} pixels ({size} MP); "
            f"the limit is {limit} MP."
        )
    shorter, longer = sorted((width, height))
    if shorter < MIN_SIDE_PIXELS or longer > MAX_ASPECT_RATIO * shorter:
        raise ImageError(
            f"This picture is {width:,}{_TIMES}{height:,} pixels, too small or too narrow to "
            f"classify; use one at least {MIN_SIDE_PIXELS} pixels on each side and at most "
            f"{MAX_ASPECT_RATIO} times longer than it is wide."
        )


def _request_draft(image: Image.Image, min_side: int) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale while the shorter side stays >= min_side."""
    shorter = min(image.size)
    if shorter <= min_side:
        return
    scale = min_side / shorter
    # Pillow picks the largest reduction whose result still covers the requested size.
    image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))


@contextmanager
def _turn_if_heavy(needed: int) -> Iterator[None]:
    """Let one heavy decode run at a time; light ones never wait."""
    if needed <= HEAVY_DECODE_BYTES:
        yield
        return
    with _heavy_decodes:
        yield


@functools.cache
def hand_back_large_buffers() -> bool:
    """Make freed picture buffers go back to the system at once (glibc; a no-op elsewhere).

    glibc raises its mmap threshold as large blocks are freed, after which it keeps
    them in the freeing thread's arena, where another thread (another session's decode)
    cannot reuse them: turns of heavy decodes then still add up. Measured with four
    40 MP float TIFFs decoded in four threads: 471 MB of growth, 161 MB with a fixed
    4 MiB threshold. For a server process; returns whether the setting took.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 4 * 2**20))
    except (OSError, AttributeError):
        return False


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Shrink a large picture that needs converting by a whole factor before converting it.

    Converting 16-bit, float, palette or transparent pictures to RGB makes copies of the
    whole picture (float copies take 8 bytes a pixel); at a size the model's crop can
    still use, they are small. RGB and grey pictures need no conversion and stay whole.
    Pictures whose reduction itself copies them (Pillow reduces RGBA and LA through a
    premultiplied copy) are reduced a band of rows at a time.
    """
    factor = min(image.size) // min_side
    if factor < 2 or image.mode in ("RGB", "L"):
        return image
    if image.mode in _WIDE_GREY_MODES - {"I"}:
        mode = "I"  # Pillow reduces 32-bit but not 16-bit pictures
    elif image.mode in ("1", "P"):
        mode = "RGBA" if image.has_transparency_data else "RGB"
    elif image.mode in ("RGBA", "LA"):
        mode = image.mode
    else:
        return image.reduce(factor)
    size = (-(-image.width // factor), -(-image.height // factor))
    return _in_bands(image, lambda band: band.convert(mode).reduce(factor), size, factor)


def _in_bands(
    image: Image.Image,
    convert: Callable[[Image.Image], Image.Image],
    size: tuple[int, int],
    step: int = 1,
) -> Image.Image:
    """Convert a picture a band of rows at a time, so that no full-size copy is made.

    Args:
        image: The picture.
        convert: Turns a band into its part of the result; all parts have one mode.
        size: The result's size.
        step: Every band but the last has a multiple of this many rows, and gives
            1/step as many: a reduction by `step`, done in bands, equals it done whole.
    """
    rows = max(step, _BAND_PIXELS // image.width // step * step)
    result = None
    for top in range(0, image.height, rows):
        part = convert(image.crop((0, top, image.width, min(top + rows, image.height))))
        if result is None:
            result = Image.new(part.mode, size)
        result.paste(part, (0, top // step))
    assert result is not None  # a picture has at least one row
    return result


def _on_white(image: Image.Image) -> Image.Image:
    """Put a picture with transparency on white, as RGB."""
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, image.convert("RGBA")).convert("RGB")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB, putting transparent areas on white."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_GREY_MODES:
        # convert("L") would clip 16-bit values at 255; scale the full range down instead.
        return _grey_from_array(np.asarray(image) / np.float32(257))
    if image.mode == "F":
        return _grey_from_array(_float_to_levels(np.asarray(image, dtype=np.float32)))
    try:
        if image.has_transparency_data:
            # In bands: whole, this held the picture, a white one, and two more copies.
            return _in_bands(image, _on_white, image.size)
        return image.convert("RGB")
    except ValueError as exc:
        raise ImageError(
            f"This picture uses the {image.mode} colour mode, which we cannot convert to "
            "RGB; save it as an ordinary RGB PNG or JPEG."
        ) from exc


def _float_to_levels(values: np.ndarray) -> np.ndarray:
    """Map a float picture to grey levels: 0..1 scaled, 0..255 as it is, other ranges stretched."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros_like(values)
    low, high = float(finite.min()), float(finite.max())
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    if low >= 0 and high <= 1:
        return values * 255
    if (low >= 0 and high <= 255) or high == low:
        return values  # clipped to 0..255 on the way to grey levels
    return (values - low) * (255 / (high - low))


def _grey_from_array(values: np.ndarray) -> Image.Image:
    """Round grey levels to 0..255 and return them as an RGB image."""
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8)).convert("RGB")


def _ftyp_brands(data: bytes) -> list[bytes]:
    """Return the major then compatible brands of an ISO-BMFF file, or [] if not one."""
    if data[4:8] != b"ftyp":
        return []
    box_end = min(int.from_bytes(data[:4], "big"), len(data))
    # Bytes 12..16 are the minor version, not a brand.
    return [data[8:12]] + [data[i : i + 4] for i in range(16, box_end - 3, 4)]


def _describe_other(data: bytes) -> str:
    """Name the kind of a file that is not an accepted picture, for the error message."""
    if data.startswith(b"%PDF-"):
        return "PDF"
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
        return "ZIP archive"
    brands = _ftyp_brands(data)
    if _AVIF_BRANDS.intersection(brands):
        return "AVIF"
    if brands:
        return "MP4/QuickTime video"
    head = data[:4096].removeprefix(b"\xef\xbb\xbf")
    if not _looks_like_text(head):
        return "unknown"
    start = head.lstrip()[:1024].lower()
    if b"<svg" in start:
        return "SVG"
    if start.startswith((b"<!doctype html", b"<html")):
        return "HTML"
    if start.startswith(b"<?xml"):
        return "XML"
    return "text"


def _looks_like_text(head: bytes) -> bool:
    """Tell whether bytes are UTF-8 that is nearly all printable characters."""
    text = head.decode("utf-8", errors="replace")
    readable = sum(ch in "\t\n\r" or (ch.isprintable() and ch != "\ufffd") for ch in text)
    return bool(text) and readable >= 0.95 * len(text)


def _amount(value: float, *, round_up: bool = False) -> str:
    """Format to one decimal; amounts round up and limits down, so they never print equal."""
    tenths = round(value * 10, 6)  # so that 40.3 is not 40.30000000000001 before rounding
    tenths = math.ceil(tenths) if round_up else math.floor(tenths)
    return f"{tenths / 10:,.1f}".removesuffix(".0")
