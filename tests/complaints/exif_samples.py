"""Photos whose metadata is the point (issue 10 §5, a photo may come first): real image data with an EXIF block
that carries a GPS position, none, or one that is malformed, hostile or odd. Built byte by byte (a small TIFF
writer), so that each case is exactly what its name says; Pillow decodes the pixels of every one of them.

SAMPLES: name -> (format, bytes builder, expected position): (lat, lon) when the browser must read a position,
None when it must read none. Used by the browser's photo-first test (which reads positions) and by the stored
photos' tests (which must find no metadata at all in what is stored, whatever came in).
"""
import io
import struct

from PIL import Image

# Inside the demo city (tests.complaints.factories.MOSCOW's neighbourhood) and outside it.
INSIDE = (55.7655, 37.6056)
OUTSIDE = (59.9386, 30.3141)  # Saint Petersburg
DEVICE = b"PhoneMaker"  # the camera make each sample with EXIF carries; never stored
ASCII, SHORT, LONG, RATIONAL, UNDEFINED = 2, 3, 4, 5, 7


def dms(value):
    """Degrees, minutes, seconds as three TIFF RATIONALs (num, den)."""
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = round(((value - d) * 60 - m) * 60 * 1000)
    return [(d, 1), (m, 1), (s, 1000)]


def rationals(pairs, order):
    return b"".join(struct.pack(order + "II", n, d) for n, d in pairs)


def tiff(ifd0, gps=None, *, order="<", gps_offset=None):
    """A TIFF block: IFD0 (entries (tag, type, count, value bytes)), a GPS IFD pointed at by IFD0's 0x8825 (unless
    `gps` is None), values longer than 4 bytes in a data area after the IFDs. `gps_offset` overrides the pointer."""
    ifd0 = list(ifd0)
    if gps is not None:
        ifd0.append((0x8825, LONG, 1, b"\0\0\0\0"))  # fixed below
    ifd0.sort(key=lambda e: e[0])
    gps = sorted(gps or [], key=lambda e: e[0])
    ifd0_at = 8
    gps_at = ifd0_at + 2 + 12 * len(ifd0) + 4
    data_at = gps_at + (2 + 12 * len(gps) + 4 if gps else 0)
    data = bytearray()

    def ifd(entries):
        out = bytearray(struct.pack(order + "H", len(entries)))
        for tag, type_, count, value in entries:
            if tag == 0x8825:
                value = struct.pack(order + "I", gps_at if gps_offset is None else gps_offset)
            if len(value) <= 4:
                field = value.ljust(4, b"\0")
            else:
                field = struct.pack(order + "I", data_at + len(data))
                data.extend(value + (b"\0" if len(value) % 2 else b""))
            out += struct.pack(order + "HHI", tag, type_, count) + field
        return bytes(out + b"\0\0\0\0")

    head = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, ifd0_at)
    first = ifd(ifd0)
    second = ifd(gps) if gps else b""
    return head + first + second + bytes(data)


def gps_entries(lat, lon, *, order="<", lat_ref=None, lon_ref=None, extra=()):
    return [(1, ASCII, 2, (lat_ref or ("N" if lat >= 0 else "S")).encode() + b"\0"),
            (2, RATIONAL, 3, rationals(dms(lat), order)),
            (3, ASCII, 2, (lon_ref or ("E" if lon >= 0 else "W")).encode() + b"\0"),
            (4, RATIONAL, 3, rationals(dms(lon), order)), *extra]


def make():
    return [(0x010F, ASCII, len(DEVICE) + 1, DEVICE + b"\0")]


def pixels(fmt, size=(64, 48)):
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 60, 40)).save(buffer, format=fmt)
    return buffer.getvalue()


def segment(marker, payload):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg(*segments):
    """A JPEG with these segments right after its SOI marker (and before Pillow's own)."""
    data = pixels("JPEG")
    return data[:2] + b"".join(segments) + data[2:]


def jpeg_exif(block):
    return jpeg(segment(0xE1, b"Exif\0\0" + block))


def png_exif(block):
    data = pixels("PNG")
    import zlib

    chunk = struct.pack(">I", len(block)) + b"eXIf" + block + struct.pack(">I", zlib.crc32(b"eXIf" + block))
    return data[:33] + chunk + data[33:]  # after the 8-byte signature and the 25-byte IHDR chunk


def webp_exif(block):
    """An extended WebP (VP8X) with an EXIF chunk, as Pillow writes it."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 60, 40)).save(buffer, format="WEBP", exif=block)
    return buffer.getvalue()


def xmp():
    return segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta><exif:GPSLatitude>55,45.9N</exif:GPSLatitude>"
                         b"<tiff:Make>PhoneMaker</tiff:Make></x:xmpmeta>")


def good(lat, lon, order="<"):
    return tiff(make(), gps_entries(lat, lon, order=order), order=order)


def huge_exif():
    """The largest EXIF block a JPEG segment holds (64 KB), mostly a maker note, the GPS IFD after it."""
    note = (0x927C, UNDEFINED, 64000, b"\xa5" * 64000)
    return tiff(make() + [note], gps_entries(*INSIDE))


def gps_loop():
    """The GPS pointer points back at IFD0 (whose first entry is no GPS tag): no position, no endless walk."""
    return tiff(make(), gps_entries(*INSIDE), gps_offset=8)


SAMPLES = {
    # a position the browser must read
    "jpeg, GPS": ("JPEG", lambda: jpeg_exif(good(*INSIDE)), INSIDE),
    "jpeg, GPS, big-endian TIFF": ("JPEG", lambda: jpeg_exif(good(*INSIDE, order=">")), INSIDE),
    "jpeg, XMP and a 60 KB ICC segment before the EXIF": (
        "JPEG", lambda: jpeg(xmp(), segment(0xE2, b"ICC_PROFILE\0" + b"\x11" * 60000), segment(
            0xE1, b"Exif\0\0" + good(*INSIDE))), INSIDE),
    "jpeg, a 64 KB EXIF block": ("JPEG", lambda: jpeg_exif(huge_exif()), INSIDE),
    "png, eXIf chunk with GPS": ("PNG", lambda: png_exif(good(*INSIDE)), INSIDE),
    "webp, EXIF chunk with GPS": ("WEBP", lambda: webp_exif(good(*INSIDE)), INSIDE),
    "jpeg, GPS outside the city": ("JPEG", lambda: jpeg_exif(good(*OUTSIDE)), OUTSIDE),
    "jpeg, GPS south and west": ("JPEG", lambda: jpeg_exif(good(-INSIDE[0], -INSIDE[1])),
                                 (-INSIDE[0], -INSIDE[1])),
    # no position: none there, or one that can not be trusted
    "jpeg, no EXIF": ("JPEG", lambda: pixels("JPEG"), None),
    "jpeg, EXIF without GPS": ("JPEG", lambda: jpeg_exif(tiff(make())), None),
    "jpeg, XMP only": ("JPEG", lambda: jpeg(xmp()), None),
    "jpeg, garbage after the Exif header": ("JPEG", lambda: jpeg_exif(b"\x13" * 300), None),
    "jpeg, truncated TIFF": ("JPEG", lambda: jpeg_exif(good(*INSIDE)[:40]), None),
    "jpeg, IFD0 offset past the block": ("JPEG", lambda: jpeg_exif(b"II*\0\xff\xff\xff\x7f" + b"\0" * 16), None),
    "jpeg, GPS pointer past the block": ("JPEG", lambda: jpeg_exif(tiff(make(), gps_entries(*INSIDE),
                                                                        gps_offset=0x7FFFFFF0)), None),
    "jpeg, GPS pointer back to IFD0": ("JPEG", lambda: jpeg_exif(gps_loop()), None),
    "jpeg, IFD declares 65535 entries": ("JPEG", lambda: jpeg_exif(b"II*\0\x08\0\0\0\xff\xff" + b"\0" * 2000), None),
    "jpeg, zero denominators": ("JPEG", lambda: jpeg_exif(tiff(make(), [
        (1, ASCII, 2, b"N\0"), (2, RATIONAL, 3, rationals([(55, 0), (45, 0), (0, 0)], "<")),
        (3, ASCII, 2, b"E\0"), (4, RATIONAL, 3, rationals([(37, 0), (36, 0), (0, 0)], "<"))])), None),
    "jpeg, 75 minutes": ("JPEG", lambda: jpeg_exif(tiff(make(), [
        (1, ASCII, 2, b"N\0"), (2, RATIONAL, 3, rationals([(55, 1), (75, 1), (0, 1)], "<")),
        (3, ASCII, 2, b"E\0"), (4, RATIONAL, 3, rationals([(37, 1), (36, 1), (0, 1)], "<"))])), None),
    "jpeg, latitude as SHORTs": ("JPEG", lambda: jpeg_exif(tiff(make(), [
        (1, ASCII, 2, b"N\0"), (2, SHORT, 3, struct.pack("<HHH", 55, 45, 0)),
        (3, ASCII, 2, b"E\0"), (4, RATIONAL, 3, rationals(dms(INSIDE[1]), "<"))])), None),
    "jpeg, no latitude reference": ("JPEG", lambda: jpeg_exif(tiff(make(), gps_entries(*INSIDE)[1:])), None),
    "jpeg, reference X": ("JPEG", lambda: jpeg_exif(tiff(make(), gps_entries(*INSIDE, lat_ref="X"))), None),
    "jpeg, 0/0 (no fix)": ("JPEG", lambda: jpeg_exif(good(0.0, 0.0)), None),
    "jpeg, GPS status void": ("JPEG", lambda: jpeg_exif(tiff(make(), gps_entries(
        *INSIDE, extra=[(9, ASCII, 2, b"V\0")]))), None),
    "jpeg, value offset past the block": ("JPEG", lambda: jpeg_exif(good(*INSIDE)[:-30]), None),
}


def sample_bytes(name):
    return SAMPLES[name][1]()
