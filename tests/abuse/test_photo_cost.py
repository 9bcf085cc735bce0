"""What a photo may cost is bounded before a pixel is decoded: a huge size in a tiny file's header is refused
from the header; a phone-sized photo is accepted and stored at most PHOTO_MAX_SIDE px on its long side."""
import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageFile

from complaints.errors import ComplaintError
from complaints.photos import clean_photo


def png_header_only(width, height):
    """A valid PNG signature and IHDR that declare width x height, with one tiny IDAT: a few dozen bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def jpeg_claiming(width, height):
    """A small real JPEG whose frame header (SOF0) is rewritten to declare width x height."""
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 200, 10)).save(out, "JPEG")
    data = bytearray(out.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture
def loads(monkeypatch):
    """Records every decode (ImageFile.load) of the image under test."""
    calls = []
    original = ImageFile.ImageFile.load

    def load(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    return calls


@pytest.mark.parametrize("make, name", [
    (lambda: png_header_only(60_000, 60_000), "bomb.png"),   # 3.6 gigapixels in under 100 bytes
    (lambda: png_header_only(8200, 6200), "just-over.png"),    # 50.8 MP: just over the 50 MP limit
    (lambda: png_header_only(2**31 - 1, 1), "wide.png"),
    (lambda: jpeg_claiming(65_000, 65_000), "bomb.jpg"),
    (lambda: jpeg_claiming(9000, 6000), "54mp.jpg"),
])
def test_a_huge_declared_size_is_refused_before_decoding(loads, make, name):
    data = make()
    assert len(data) < 2000
    with pytest.raises(ComplaintError, match="megapixels|мегапиксел") as error:
        clean_photo(SimpleUploadedFile(name, data))
    assert error.value.field == "photo"
    assert loads == []  # refused from the header: nothing was decoded


@pytest.mark.parametrize("fmt, size", [("JPEG", (8160, 6120)), ("PNG", (7000, 7000)), ("WEBP", (4000, 3000))])
def test_a_phone_sized_photo_is_accepted_and_stored_bounded(settings, fmt, size):
    """50 MP (a 50 MP phone sensor's full resolution) and 49 MP are within the limit; stored at most 2560 px."""
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(out, fmt)
    photo = clean_photo(SimpleUploadedFile("p", out.getvalue()))
    assert max(photo.width, photo.height) == settings.PHOTO_MAX_SIDE
    assert abs(photo.width / photo.height - size[0] / size[1]) < 0.01
    stored = Image.open(io.BytesIO(photo.read()))
    assert stored.size == (photo.width, photo.height) and stored.format == fmt


def test_a_jpeg_is_decoded_in_draft_mode(loads):
    out = io.BytesIO()
    Image.new("RGB", (8160, 6120), (1, 2, 3)).save(out, "JPEG")
    clean_photo(SimpleUploadedFile("p.jpg", out.getvalue()))
    assert loads and max(loads[0]) <= 4080  # libjpeg scaled it while decoding: at most half of 8160 px


def test_pillows_own_guard_is_set_to_the_limit(settings):
    settings.PHOTO_MAX_PIXELS = 1_000_000
    with pytest.raises(ComplaintError, match="megapixels|мегапиксел"):
        clean_photo(SimpleUploadedFile("b.png", png_header_only(1500, 1000)))
    assert Image.MAX_IMAGE_PIXELS == 1_000_000
