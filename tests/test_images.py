"""Tests for classifier.images; every picture is generated here, in memory."""

from __future__ import annotations

import io
import logging
import struct
import time
import zipfile
import zlib

import numpy as np
import pillow_heif
import pytest
from PIL import Image, ImageFile

from classifier import config, images
from classifier.images import (
    DecodedImage,
    ImageError,
    decode_image,
    fit_to_input,
    make_thumbnail,
    min_side_for,
)

RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
HEIF_SKIP_REASON = "this pillow-heif build cannot encode HEIF"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMES = "\N{MULTIPLICATION SIGN}"


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    """Save an image to bytes; HEIF goes through pillow-heif so the opener stays unregistered."""
    buffer = io.BytesIO()
    if fmt == "HEIF":
        if not pillow_heif.libheif_info()["HEIF"]:
            pytest.skip(HEIF_SKIP_REASON)
        pillow_heif.from_pillow(image).save(buffer, **{"quality": 90, **params})
    else:
        image.save(buffer, fmt, **params)
    return buffer.getvalue()


def halves(left: tuple, right: tuple, size: tuple[int, int] = (64, 48)) -> Image.Image:
    """Return an RGB image whose left half is one colour and right half another."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def assert_colour(pixel, expected, tolerance: int = 3) -> None:
    difference = np.abs(np.array(pixel[:3], dtype=int) - np.array(expected)).max()
    assert difference <= tolerance, f"{pixel} is not within {tolerance} of {expected}"


def patch_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR width and height of a PNG, with a valid CRC."""
    patched = bytearray(data)
    patched[16:24] = struct.pack(">II", width, height)
    patched[29:33] = struct.pack(">I", zlib.crc32(bytes(patched[12:29])))
    return bytes(patched)


def patch_tiff_short_tag(data: bytes, tag: int, value: int) -> bytes:
    """Rewrite the inline value of a one-SHORT tag in the first IFD of a little-endian TIFF."""
    patched = bytearray(data)
    (ifd,) = struct.unpack_from("<I", patched, 4)
    (count,) = struct.unpack_from("<H", patched, ifd)
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        if struct.unpack_from("<H", patched, entry)[0] == tag:
            struct.pack_into("<H", patched, entry + 8, value)
            return bytes(patched)
    raise AssertionError(f"tag {tag} not found")


def half_a_jpeg() -> bytes:
    """Return the first half of a real photo-like JPEG, as an interrupted download would."""
    pixels = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    data = encode(Image.fromarray(pixels), "JPEG", quality=90)
    return data[: len(data) // 2]


@pytest.fixture
def setenv(monkeypatch):
    """Set an environment variable and make the settings read it, now and after the test."""
    # Settings may be read once and cached; reset_settings() drops that cache.
    reset = getattr(config, "reset_settings", lambda: None)

    def set_variable(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        reset()

    yield set_variable
    monkeypatch.undo()
    reset()


@pytest.fixture
def no_pixel_decoding(monkeypatch):
    """Fail the test if any image data is decoded."""

    def refuse(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


# --- Accepted formats ---------------------------------------------------------------------

FORMATS = ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "HEIF"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_decodes_to_rgb_with_its_colours(fmt):
    data = encode(halves(RED, BLUE), fmt)

    decoded = decode_image(data)

    assert decoded.format == fmt
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (decoded.width, decoded.height) == (64, 48)
    lossy = fmt in {"JPEG", "WEBP", "HEIF"}
    assert_colour(decoded.image.getpixel((12, 24)), RED, tolerance=40 if lossy else 0)
    assert_colour(decoded.image.getpixel((52, 24)), BLUE, tolerance=40 if lossy else 0)


@pytest.mark.parametrize(
    ("fmt", "misleading_name"), [("PNG", "photo.jpg"), ("JPEG", "scan.png"), ("GIF", "x.heic")]
)
def test_content_decides_the_format_not_the_file_name(tmp_path, fmt, misleading_name):
    path = tmp_path / misleading_name
    path.write_bytes(encode(halves(RED, BLUE), fmt))

    assert decode_image(path.read_bytes()).format == fmt


@pytest.mark.parametrize(("dtype", "byte_order"), [("<u2", b"II"), (">u2", b"MM")])
def test_tiff_decodes_in_both_byte_orders(dtype, byte_order):
    data = encode(Image.fromarray(np.full((32, 32), 32768, dtype=dtype)), "TIFF")
    assert data[:2] == byte_order

    decoded = decode_image(data)

    assert decoded.format == "TIFF"
    assert_colour(decoded.image.getpixel((5, 5)), (128, 128, 128), tolerance=1)


def iso_media(brands: bytes) -> bytes:
    """Return an ftyp box with these brands (major, minor version, compatible) and no media."""
    return struct.pack(">I", 8 + len(brands)) + b"ftyp" + brands + b"\0" * 32


@pytest.mark.parametrize(
    "major", [b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"]
)
def test_heif_brands_load_pillow_heif_which_then_claims_the_file(monkeypatch, major):
    calls = []
    register = images._register_heif_opener
    monkeypatch.setattr(images, "_register_heif_opener", lambda: calls.append(register()))

    with pytest.raises(ImageError, match=r"^This HEIC file is incomplete or damaged"):
        decode_image(iso_media(major + b"\0\0\0\0mif1"))

    assert len(calls) == 1


@pytest.mark.parametrize(
    ("brands", "detected"),
    [
        (b"avif\0\0\0\0avifmif1", "AVIF"),
        (b"mif1\0\0\0\0mif1avif", "AVIF"),  # a HEIF brand, but AVIF inside
        (b"isom\0\0\0\0mp41", "MP4/QuickTime video"),
    ],
)
def test_other_iso_media_is_refused_without_loading_pillow_heif(monkeypatch, brands, detected):
    def refuse():
        raise AssertionError("pillow-heif was loaded")

    monkeypatch.setattr(images, "_register_heif_opener", refuse)

    with pytest.raises(
        ImageError, match=rf"^This file is not a picture .*\(detected: {detected}\)"
    ):
        decode_image(iso_media(brands))


def test_other_formats_do_not_load_pillow_heif(monkeypatch):
    def refuse():
        raise AssertionError("pillow-heif was loaded")

    monkeypatch.setattr(images, "_register_heif_opener", refuse)

    assert decode_image(encode(halves(RED, BLUE), "PNG")).format == "PNG"


# --- Colour modes ------------------------------------------------------------------------


def palette_with_transparency() -> Image.Image:
    """Left half palette index 1 (red), right half index 0, which is transparent."""
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, *RED])
    image.paste(1, (0, 0, 8, 16))
    image.info["transparency"] = 0
    return image


MODE_CASES = [
    pytest.param(
        Image.new("RGBA", (16, 16), (255, 0, 0, 128)),
        "PNG",
        (255, 127, 127),
        id="RGBA-half-red-is-pink",
    ),
    pytest.param(
        Image.new("RGBA", (16, 16), (255, 0, 0, 0)), "PNG", WHITE, id="RGBA-transparent-is-white"
    ),
    pytest.param(Image.new("LA", (16, 16), (0, 128)), "PNG", (127, 127, 127), id="LA-half-black"),
    pytest.param(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", RED, id="CMYK-JPEG-red"),
    pytest.param(
        Image.new("CMYK", (16, 16), (255, 0, 255, 0)), "TIFF", GREEN, id="CMYK-TIFF-green"
    ),
    pytest.param(
        Image.fromarray(np.full((16, 16), 32768, np.uint16)),
        "PNG",
        (128, 128, 128),
        id="I16-PNG-mid-grey",
    ),
    pytest.param(
        Image.fromarray(np.full((16, 16), 65535, np.int32)), "TIFF", WHITE, id="I32-TIFF-white"
    ),
    pytest.param(Image.new("1", (16, 16), 1), "PNG", WHITE, id="1-bit-white"),
    pytest.param(Image.new("L", (16, 16), 77), "PNG", (77, 77, 77), id="L-grey"),
    pytest.param(Image.new("F", (16, 16), 0.5), "TIFF", (128, 128, 128), id="F-unit-range"),
    pytest.param(Image.new("F", (16, 16), 100.0), "TIFF", (100, 100, 100), id="F-0-255-range"),
    pytest.param(Image.new("F", (16, 16), 900.0), "TIFF", WHITE, id="F-clipped"),
    pytest.param(Image.new("RGB", (16, 16), RED).convert("YCbCr"), "TIFF", RED, id="YCbCr-TIFF"),
]


@pytest.mark.parametrize(("source", "fmt", "expected"), MODE_CASES)
def test_every_mode_becomes_the_right_rgb_colour(source, fmt, expected):
    data = encode(source, fmt)

    decoded = decode_image(data)

    assert decoded.image.mode == "RGB"
    assert_colour(decoded.image.getpixel((8, 8)), expected, tolerance=12 if fmt == "JPEG" else 1)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_white(fmt):
    decoded = decode_image(encode(palette_with_transparency(), fmt))

    assert_colour(decoded.image.getpixel((2, 8)), RED, tolerance=0)
    assert_colour(decoded.image.getpixel((13, 8)), WHITE, tolerance=0)


def noisy_transparent(mode: str, size: tuple[int, int] = (203, 131)) -> Image.Image:
    """A picture of random colours and random transparency, in RGBA, LA, P or L."""
    rng = np.random.default_rng(7)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    if mode in ("RGBA", "LA"):
        return rgba.convert(mode)
    image = rgba.convert("RGB").quantize(32) if mode == "P" else rgba.convert("L")
    image.info["transparency"] = 5
    return image


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L"])
@pytest.mark.parametrize("min_side", [30, 131])  # reduced 4 times, and not reduced
def test_transparency_converted_in_bands_gives_the_same_picture(mode, min_side, monkeypatch):
    monkeypatch.setattr(images, "_BAND_PIXELS", 1000)  # several bands, of uneven sizes
    source = noisy_transparent(mode)
    factor = min(source.size) // min_side
    whole = source
    if factor >= 2 and mode != "L":
        whole = (source.convert("RGBA") if mode == "P" else source).reduce(factor)
    white = Image.new("RGBA", whole.size, WHITE)
    expected = Image.alpha_composite(white, whole.convert("RGBA")).convert("RGB")

    decoded = decode_image(encode(source, "PNG"), min_side=min_side)

    assert decoded.image.size == expected.size
    assert np.array_equal(np.asarray(decoded.image), np.asarray(expected))


def test_unconvertible_mode_is_named_in_the_message():
    # A TIFF whose alpha is marked "associated" opens in Pillow's premultiplied La mode.
    data = patch_tiff_short_tag(encode(Image.new("LA", (16, 16), (90, 200)), "TIFF"), 338, 1)

    with pytest.raises(ImageError, match="uses the La colour mode"):
        decode_image(data)


# --- Orientation, frames and large JPEGs -------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF"])
def test_exif_orientation_6_rotates_the_picture_once_and_swaps_its_size(fmt):
    original = Image.new("RGB", (60, 40), BLUE)
    original.paste(RED, (0, 0, 30, 20))  # top-left quadrant
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(original, fmt, quality=95, exif=exif.tobytes())

    decoded = decode_image(data)

    assert (decoded.width, decoded.height) == (40, 60)
    assert decoded.image.size == (40, 60)
    assert_colour(decoded.image.getpixel((30, 15)), RED, tolerance=20)  # now top-right
    assert_colour(decoded.image.getpixel((10, 15)), BLUE, tolerance=20)
    reference = np.asarray(original.transpose(Image.Transpose.ROTATE_270), dtype=int)
    assert np.abs(np.asarray(decoded.image, dtype=int) - reference).mean() < 8


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_decodes_its_first_frame(fmt):
    first, second = Image.new("RGB", (32, 32), GREEN), Image.new("RGB", (32, 32), RED)
    data = encode(first, fmt, save_all=True, append_images=[second], lossless=True)
    assert Image.open(io.BytesIO(data)).n_frames == 2

    assert_colour(decode_image(data).image.getpixel((16, 16)), GREEN, tolerance=0)


@pytest.fixture(scope="module")
def big_jpeg() -> bytes:
    return encode(Image.new("RGB", (4000, 3000), GREEN), "JPEG", quality=90)


@pytest.mark.parametrize("min_side", [256, 1000])
def test_big_jpeg_is_decoded_reduced_but_reports_its_real_size(big_jpeg, min_side):
    decoded = decode_image(big_jpeg, min_side=min_side)

    assert (decoded.width, decoded.height) == (4000, 3000)
    shorter = min(decoded.image.size)
    assert min_side <= shorter < 2 * min_side  # the largest reduction that still covers it
    assert decoded.image.width / decoded.image.height == pytest.approx(4 / 3, rel=0.01)
    assert_colour(decoded.image.getpixel((50, 50)), GREEN, tolerance=12)


def test_big_rotated_jpeg_reports_its_size_after_orientation(big_jpeg):
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.open(io.BytesIO(big_jpeg)), "JPEG", exif=exif.tobytes())

    decoded = decode_image(data, min_side=256)

    assert (decoded.width, decoded.height) == (3000, 4000)
    assert decoded.image.size == (375, 500)


# --- Rejections --------------------------------------------------------------------------


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


REJECTIONS = [
    pytest.param(b"", "The file is empty.", id="empty"),
    pytest.param(b"Shopping list:\n- eggs\n- milk\n", "(detected: text)", id="text"),
    pytest.param(b"BMW service notes, 2024\n" * 3, "(detected: text)", id="text-starting-BM"),
    pytest.param(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\nendobj\n%%EOF\n", "(detected: PDF)", id="pdf"
    ),
    pytest.param(zip_bytes(), "(detected: ZIP archive)", id="zip"),
    pytest.param(
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
        "(detected: SVG)",
        id="svg",
    ),
    pytest.param(b"<!DOCTYPE html><html><body>hi</body></html>", "(detected: HTML)", id="html"),
    pytest.param(b'<?xml version="1.0"?><note>hi</note>', "(detected: XML)", id="xml"),
    pytest.param(
        b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf" + b"\0" * 64, "(detected: AVIF)", id="avif"
    ),
    pytest.param(np.random.default_rng(7).bytes(4096), "(detected: unknown)", id="random-bytes"),
    pytest.param(
        half_a_jpeg(),
        "This JPEG file is incomplete or damaged",
        id="truncated-jpeg",
    ),
    # Pillow only tries the accepted formats; with all of them it would open a Kodak Photo CD.
    pytest.param(
        PNG_SIGNATURE + bytes(2040) + b"PCD_IPI" + bytes(800_000),
        "This PNG file is incomplete or damaged",
        id="png-signature-photo-cd-body",
    ),
    pytest.param(
        patch_png_size(encode(Image.new("RGB", (16, 16)), "PNG"), 0, 0),
        "This PNG file is incomplete or damaged",
        id="zero-by-zero",
    ),
]


@pytest.mark.parametrize(("data", "message"), REJECTIONS)
def test_rejected_files_get_a_message_a_person_can_act_on(data, message):
    with pytest.raises(ImageError) as caught:
        decode_image(data)

    assert message in str(caught.value)
    if "detected" in message:
        assert str(caught.value).endswith("Accepted: PNG, JPEG, WebP, BMP, GIF, TIFF, HEIC.")


def test_file_size_is_checked_before_anything_else():
    with pytest.raises(ImageError, match=r"^This file is 1\.1 MB; the limit is 1 MB\.$"):
        decode_image(b"\0" * (2**20 + 50_000), max_bytes=2**20)


@pytest.mark.parametrize(
    ("size", "limit", "message"),
    [
        (8, 7, "This file is 8 bytes; the limit is 7 bytes."),
        (2000, 1500, "This file is 2 KB; the limit is 1.5 KB."),
        (20_000_001, 20_000_000, "This file is 20.1 MB; the limit is 20 MB."),
        # Decimal MB, as Streamlit's uploader says this file's size ("25.2MB").
        (24 * 2**20, 20_000_000, "This file is 25.2 MB; the limit is 20 MB."),
    ],
)
def test_a_file_over_the_limit_is_told_its_size_in_bytes_kb_or_mb(size, limit, message):
    with pytest.raises(ImageError) as refused:
        decode_image(b"\0" * size, max_bytes=limit)

    assert str(refused.value) == message


def test_sizes_are_said_in_decimal_units_as_the_uploader_says_them():
    from classifier.images import size_text

    assert [size_text(n) for n in (999, 1000, 1_500_000, 20_000_000, 2_000_000_000)] == [
        "999 bytes", "1 KB", "1.5 MB", "20 MB", "2 GB"
    ]  # fmt: skip
    assert size_text(24 * 2**20) == "25.1 MB" and size_text(24 * 2**20, round_up=True) == "25.2 MB"


def test_the_file_size_limit_defaults_to_the_setting(setenv):
    setenv("CLASSIFIER_MAX_BYTES", "7")

    with pytest.raises(ImageError, match=r"^This file is 8 bytes; the limit is 7 bytes\.$"):
        decode_image(encode(Image.new("RGB", (8, 8)), "PNG")[:8])


def test_size_limits_default_to_the_settings(setenv):
    setenv("CLASSIFIER_MAX_PIXELS", "1000000")
    data = encode(Image.new("RGB", (2000, 1000)), "PNG")

    with pytest.raises(
        ImageError, match=rf"2,000 {TIMES} 1,000 pixels \(2 MP\); the limit is 1 MP\.$"
    ):
        decode_image(data)


@pytest.mark.parametrize(
    ("width", "height", "max_pixels", "message"),
    [
        (
            8000,
            8000,
            40_000_000,
            f"This picture is 8,000 {TIMES} 8,000 pixels (64 MP); the limit is 40 MP.",
        ),
        # Past twice Pillow's own bomb limit its error fires inside Image.open.
        (50_000, 50_000, 40_000_000, "too many pixels to open safely; the limit is 40 MP"),
        # A configured limit above Pillow's is capped at Pillow's.
        (10_000, 9_000, 200_000_000, "(90 MP); the limit is 89.4 MP."),
    ],
)
# Pillow warns inside Image.open past its own limit; the picture is refused either way.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_fails_fast_from_the_header(
    no_pixel_decoding, width, height, max_pixels, message
):
    data = patch_png_size(encode(Image.new("RGB", (16, 16)), "PNG"), width, height)
    started = time.perf_counter()

    with pytest.raises(ImageError) as caught:
        decode_image(data, max_pixels=max_pixels)

    assert message in str(caught.value)
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(("width", "height"), [(1, 5000), (5000, 1), (400, 7), (8, 401)])
def test_absurd_shapes_are_rejected_from_the_header(no_pixel_decoding, width, height):
    data = encode(Image.new("RGB", (width, height)), "PNG")

    with pytest.raises(
        ImageError, match=f"{width:,} {TIMES} {height:,} pixels, too small or too narrow"
    ):
        decode_image(data)


def test_a_50_to_1_strip_is_still_accepted():
    assert decode_image(encode(Image.new("RGB", (400, 8)), "PNG")).image.size == (400, 8)


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fmt", FORMATS)
def test_damaged_files_only_ever_raise_image_error(fmt):
    pixels = np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    original = encode(Image.fromarray(pixels), fmt)
    rng = np.random.default_rng(11)
    rejected = 0
    for trial in range(60):
        data = np.frombuffer(original, dtype=np.uint8).copy()
        if trial % 3 == 0:
            data = data[: rng.integers(1, len(data))]
        else:
            positions = rng.integers(0, len(data), rng.integers(1, 16))
            data[positions] = rng.integers(0, 256, len(positions))
        try:
            decoded = decode_image(data.tobytes())
        except ImageError as exc:
            rejected += 1
            assert str(exc).startswith(("This ", "The "))  # ours, never Pillow's text
        else:
            assert isinstance(decoded, DecodedImage) and decoded.image.mode == "RGB"
    assert rejected > 0


def raise_type_error(*args, **kwargs):
    raise TypeError("unsupported operand type(s) for +: 'int' and 'NoneType'")


@pytest.mark.parametrize(
    ("target", "name"),
    [(Image, "open"), (ImageFile.ImageFile, "load"), (images.ImageOps, "exif_transpose")],
)
def test_our_own_bug_is_logged_and_not_blamed_on_the_file(monkeypatch, caplog, target, name):
    monkeypatch.setattr(target, name, raise_type_error)
    data = encode(halves(RED, BLUE), "PNG")

    with (
        caplog.at_level(logging.ERROR, logger="classifier.images"),
        pytest.raises(ImageError) as caught,
    ):
        decode_image(data)

    assert str(caught.value) == (
        "We could not read this picture because of a problem on our side; it has been logged. "
        "Try another file."
    )
    assert isinstance(caught.value.__cause__, TypeError)
    [record] = [r for r in caplog.records if r.name == "classifier.images"]
    assert record.levelno == logging.ERROR
    assert record.exc_info and record.exc_info[0] is TypeError


@pytest.mark.parametrize("exception", [OSError("broken data stream"), SyntaxError("bad chunk")])
def test_pillow_decoder_errors_still_mean_a_damaged_file(monkeypatch, caplog, exception):
    def fail(self):
        raise exception

    monkeypatch.setattr(ImageFile.ImageFile, "load", fail)

    with pytest.raises(ImageError, match=r"^This PNG file is incomplete or damaged"):
        decode_image(encode(halves(RED, BLUE), "PNG"))
    assert not [r for r in caplog.records if r.name == "classifier.images"]


# --- Model input and thumbnails ----------------------------------------------------------


def test_fit_to_input_returns_a_contiguous_uint8_square():
    array = fit_to_input(halves(RED, BLUE, (640, 480)), 224)

    assert array.shape == (224, 224, 3)
    assert array.dtype == np.uint8
    assert array.flags.c_contiguous


def test_fit_to_input_keeps_only_the_centre():
    # The red square is exactly the 0.875 crop; resizing the whole picture would show blue.
    image = Image.new("RGB", (400, 300), BLUE)
    side = 300 * 0.875
    left, top = (400 - side) / 2, (300 - side) / 2
    image.paste(RED, (round(left), round(top), round(left + side), round(top + side)))

    array = fit_to_input(image, 224)

    red = (array[..., 0] > 200) & (array[..., 2] < 60)
    assert red.mean() > 0.97


def test_fit_to_input_handles_a_very_wide_strip():
    strip = Image.new("RGB", (4000, 100), BLUE)
    strip.paste(RED, (1950, 0, 2050, 100))

    array = fit_to_input(strip, 224)

    assert array.shape == (224, 224, 3)
    assert (array[..., 0] > 200).all() and (array[..., 2] < 60).all()


def test_fit_to_input_matches_resize_shorter_side_then_centre_crop():
    gradient = np.add.outer(np.arange(240), np.arange(320)).astype(np.float64)
    image = Image.fromarray((gradient / gradient.max() * 255).astype(np.uint8)).convert("RGB")
    resized = image.resize((341, 256), Image.Resampling.BILINEAR)  # shorter side to 224 / 0.875
    left = (341 - 224) // 2
    reference = np.asarray(resized.crop((left, 16, left + 224, 240)), dtype=int)

    array = fit_to_input(image, 224).astype(int)

    assert np.abs(array - reference).mean() < 2


def test_fit_to_input_refuses_images_that_are_not_rgb():
    with pytest.raises(ValueError, match=r"Expected an RGB image\. Received mode: RGBA"):
        fit_to_input(Image.new("RGBA", (300, 300)), 224)


@pytest.mark.parametrize(("size", "expected"), [(224, 256), (299, 342), (331, 379)])
def test_min_side_for_covers_the_centre_crop(size, expected):
    assert min_side_for(size) == expected


@pytest.mark.parametrize(
    ("size", "expected"),
    [((4000, 3000), (256, 192)), ((300, 1200), (64, 256)), ((100, 50), (100, 50))],
)
def test_thumbnail_is_webp_no_longer_than_256(size, expected):
    data = make_thumbnail(halves(RED, BLUE, size))

    thumbnail = Image.open(io.BytesIO(data))
    assert thumbnail.format == "WEBP"
    assert thumbnail.size == expected
    assert_colour(thumbnail.convert("RGB").getpixel((2, expected[1] // 2)), RED, tolerance=40)


def test_thumbnail_falls_back_to_jpeg_without_webp(monkeypatch):
    monkeypatch.setattr(images.features, "check", lambda feature: feature != "webp")

    thumbnail = Image.open(io.BytesIO(make_thumbnail(Image.new("RGB", (512, 512), RED))))

    assert thumbnail.format == "JPEG"
    assert thumbnail.size == (256, 256)
