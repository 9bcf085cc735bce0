"""Photo uploads: the real format decides (not the name), limits hold, and no EXIF/GPS survives."""
import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from complaints.errors import ComplaintError
from complaints.photos import clean_photo

from .factories import image_bytes


def upload(data, name="photo.jpg", content_type="image/jpeg"):
    return SimpleUploadedFile(name, data, content_type=content_type)


def jpeg_with_gps():
    """A JPEG as a phone makes it: EXIF with camera make, orientation and a GPS position."""
    image = Image.new("RGB", (80, 40), "blue")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (55.0, 45.0, 55.8), 3: "E", 4: (37.0, 36.0, 20.2)})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, comment=b"secret comment")
    data = buffer.getvalue()
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the fixture really carries GPS
    return data


def test_jpeg_with_gps_exif_is_stored_without_any_exif():
    cleaned = clean_photo(upload(jpeg_with_gps()))
    stored = Image.open(io.BytesIO(cleaned.read()))
    assert stored.format == "JPEG"
    assert not stored.getexif()
    assert "exif" not in stored.info and "comment" not in stored.info
    # The EXIF orientation was applied to the pixels before it was dropped: the photo stays upright.
    assert (stored.width, stored.height) == (40, 80) == (cleaned.width, cleaned.height)
    assert cleaned.content_type == "image/jpeg" and cleaned.name.endswith(".jpg")


def test_stored_bytes_have_no_exif_marker():
    cleaned = clean_photo(upload(jpeg_with_gps()))
    cleaned.seek(0)
    data = cleaned.read()
    assert b"Exif\x00\x00" not in data and b"PhoneMaker" not in data and b"secret comment" not in data


def test_text_file_named_jpg_is_refused():
    with pytest.raises(ComplaintError) as error:
        clean_photo(upload(b"this is not an image, only text\n" * 10, name="photo.jpg"))
    assert error.value.field == "photo"
    assert "JPEG, PNG or WebP" in str(error.value)


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF"])
def test_other_image_formats_are_refused_whatever_the_name(fmt):
    with pytest.raises(ComplaintError, match="JPEG, PNG or WebP"):
        clean_photo(upload(image_bytes(fmt), name="photo.png"))


def test_truncated_jpeg_is_refused():
    data = image_bytes("JPEG", size=(400, 300))
    with pytest.raises(ComplaintError):
        clean_photo(upload(data[: len(data) // 2]))


def test_empty_file_is_refused():
    with pytest.raises(ComplaintError, match="empty"):
        clean_photo(upload(b""))


def test_too_many_bytes_is_refused(settings):
    settings.PHOTO_MAX_BYTES = 1000
    noise = Image.frombytes("RGB", (100, 100), os.urandom(100 * 100 * 3))  # does not compress
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    with pytest.raises(ComplaintError, match="larger than"):
        clean_photo(upload(buffer.getvalue(), name="big.png"))


def test_size_is_checked_on_the_bytes_not_the_declared_size(settings):
    settings.PHOTO_MAX_BYTES = 1000
    lying = upload(b"\xff" * 5000)
    lying.size = 10  # a client (or a bug) that under-reports the size
    with pytest.raises(ComplaintError, match="larger than"):
        clean_photo(lying)


def test_decompression_bomb_is_refused_before_decoding(settings):
    settings.PHOTO_MAX_PIXELS = 1_000_000
    # 5000 x 5000 of one colour compresses to a few kilobytes but would decode to 75 MB.
    bomb = image_bytes("PNG", size=(5000, 5000))
    assert len(bomb) < settings.PHOTO_MAX_BYTES
    with pytest.raises(ComplaintError, match="megapixels"):
        clean_photo(upload(bomb, name="bomb.png"))


@pytest.mark.parametrize("fmt, mode, content_type, ext", [
    ("PNG", "RGB", "image/png", "png"),
    ("PNG", "RGBA", "image/png", "png"),
    ("PNG", "P", "image/png", "png"),
    ("WEBP", "RGB", "image/webp", "webp"),
    ("WEBP", "RGBA", "image/webp", "webp"),
    ("JPEG", "L", "image/jpeg", "jpg"),
])
def test_png_and_webp_and_jpeg_are_accepted_and_keep_their_format(fmt, mode, content_type, ext):
    cleaned = clean_photo(upload(image_bytes(fmt, mode=mode), name="no-extension"))
    assert (cleaned.content_type, cleaned.name.rsplit(".", 1)[1]) == (content_type, ext)
    stored = Image.open(io.BytesIO(cleaned.read()))
    assert stored.format == fmt and stored.size == (64, 48)
    assert not stored.getexif()


def test_png_and_webp_lose_their_exif_too():
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 55.8)})
    for fmt in ("PNG", "WEBP"):
        data = image_bytes(fmt, exif=exif)
        assert Image.open(io.BytesIO(data)).getexif()
        cleaned = clean_photo(upload(data))
        assert not Image.open(io.BytesIO(cleaned.read())).getexif()
