"""Photo uploads: only real JPEG/PNG/WebP images of bounded size, re-encoded so EXIF (and GPS) never reach disk.

What a photo may cost is bounded before a pixel is decoded: the file's size (PHOTO_MAX_BYTES), and its dimensions
as the header declares them (PHOTO_MAX_PIXELS, also Pillow's own MAX_IMAGE_PIXELS), read by Image.open, which
decodes nothing. A JPEG is then decoded in draft mode (libjpeg scales by 1/2, 1/4 or 1/8 while decoding) near the
stored size; a PNG or WebP is decoded whole (at most PHOTO_MAX_PIXELS) and reduced. The stored photo is at most
PHOTO_MAX_SIDE pixels on its long side, so the re-encode never works on more than that.
"""
import io
import uuid
import warnings

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import models
from django.utils.translation import gettext as _
from PIL import Image, ImageOps

from .errors import ComplaintError, Faults

# Pillow format -> (content type, file extension). The format is what Pillow finds in the bytes, not the name.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}


class CleanPhoto(ContentFile):
    """Re-encoded image bytes, named `<uuid>.<ext>`, with what a Photo row stores about them."""

    def __init__(self, content, *, name, content_type, width, height):
        super().__init__(content, name=name)
        self.content_type, self.width, self.height = content_type, width, height


class CleanPhotoField(models.FileField):
    """A FileField that stores only what clean_photo made: a new file of any other kind is refused before it is
    written (ValueError), so no path (web form, Open311 media, volunteer checks, answers, a future one) can store
    a photo with its EXIF, GPS or device data. The one owner of that rule is this module. Migrations see a plain
    FileField."""

    def pre_save(self, model_instance, add):
        file = getattr(model_instance, self.attname)
        if file and not file._committed and not isinstance(file.file, CleanPhoto):
            raise ValueError(f"{model_instance.__class__.__name__}.{self.name} stores only photos re-encoded by "
                             "complaints.photos.clean_photo")
        return super().pre_save(model_instance, add)

    def deconstruct(self):
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.FileField", args, kwargs


def clean_photo(uploaded_file):
    """Check an uploaded photo and return it re-encoded without metadata; raise ComplaintError otherwise."""
    data = _read_limited(uploaded_file, settings.PHOTO_MAX_BYTES)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = settings.PHOTO_MAX_PIXELS  # Pillow's own guard, at the same limit
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            # Image.open reads only the header: refuse decompression bombs before decoding a pixel.
            check_dimensions(image.width, image.height)
            fmt = image.format
            side = settings.PHOTO_MAX_SIDE
            if fmt == "JPEG":
                image.draft(image.mode if image.mode in ("RGB", "L") else "RGB", (side, side))
            image.load()
    except ComplaintError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # Pillow's check of the header
        raise _too_many_pixels() from None
    except Image.UnidentifiedImageError:
        raise ComplaintError(_("The photo must be a JPEG, PNG or WebP image."), field="photo") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # what Pillow raises for broken or truncated files
        raise ComplaintError(_("The photo file is damaged and can not be read."), field="photo") from None

    content_type, ext = FORMATS[fmt]
    image = _bounded(image, settings.PHOTO_MAX_SIDE)
    image = ImageOps.exif_transpose(image)  # keep the photo upright once its EXIF orientation is gone
    image = _for_format(image, fmt)
    # No EXIF, XMP, ICC, comments or text chunks: Pillow falls back to `info` for some of them. Only a
    # palette's transparent colour is image data.
    image.info = {k: v for k, v in image.info.items() if k == "transparency"}
    out = io.BytesIO()
    options = {"JPEG": {"quality": 85, "optimize": True}, "WEBP": {"quality": 85}, "PNG": {"optimize": True}}
    image.save(out, format=fmt, **options[fmt])
    return CleanPhoto(out.getvalue(), name=f"{uuid.uuid4().hex}.{ext}", content_type=content_type,
                      width=image.width, height=image.height)


def clean_photos(uploaded_files):
    """Check several photos of one complaint: at most PHOTO_MAX_PER_COMPLAINT of them (counted before any is
    read), each as clean_photo does; the faults of all of them together (errors.ComplaintInvalid), each message
    naming its photo by its place and file name. Returns the re-encoded photos in their order."""
    files = [f for f in uploaded_files or () if f]
    limit = settings.PHOTO_MAX_PER_COMPLAINT
    if len(files) > limit:
        raise ComplaintError(_("At most %(n)d photos per complaint.") % {"n": limit}, field="photo")
    faults = Faults()
    cleaned = []
    for number, uploaded_file in enumerate(files, 1):
        try:
            cleaned.append(clean_photo(uploaded_file))
        except ComplaintError as exc:
            if len(files) > 1:
                name = str(getattr(uploaded_file, "name", "") or "")[:60]
                exc = ComplaintError(_("Photo %(n)d (%(name)s): %(message)s")
                                     % {"n": number, "name": name, "message": exc}, field="photo")
            faults.add(exc)
    faults.raise_any()
    return cleaned


def check_dimensions(width, height):
    """Refuse an image whose declared size passes PHOTO_MAX_PIXELS (or is empty), before it is decoded."""
    if width <= 0 or height <= 0:
        raise ComplaintError(_("The photo file is damaged and can not be read."), field="photo")
    if width * height > settings.PHOTO_MAX_PIXELS:
        raise _too_many_pixels()


def _too_many_pixels():
    return ComplaintError(_("The photo is too large: at most %(mp).0f megapixels.")
                          % {"mp": settings.PHOTO_MAX_PIXELS / 1e6}, field="photo")


def _bounded(image, side):
    """The image scaled to at most `side` pixels on its long side: reduce() by a whole factor (cheap), then a
    proper resample the rest of the way."""
    longest = max(image.size)
    if longest <= side:
        return image
    factor = longest // side
    if factor >= 2 and image.mode not in ("P", "1"):
        image = image.reduce(factor)
    if max(image.size) > side:
        image = image.copy() if image.mode in ("P", "1") else image
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
    return image


def _read_limited(uploaded_file, limit):
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > limit:
        raise _too_big(limit)
    if hasattr(uploaded_file, "seek"):
        uploaded_file.seek(0)
    data = uploaded_file.read(limit + 1)  # never trust `size` alone
    if len(data) > limit:
        raise _too_big(limit)
    if not data:
        raise ComplaintError(_("The photo file is empty."), field="photo")
    return data


def _too_big(limit):
    return ComplaintError(_("The photo is larger than %(mb).1f MB.") % {"mb": limit / 1024 / 1024}, field="photo")


def _for_format(image, fmt):
    """Convert to a mode the output format can hold (first frame only: animations are not kept)."""
    if fmt == "JPEG":
        return image if image.mode in ("RGB", "L") else image.convert("RGB")
    if fmt == "WEBP":
        return image if image.mode in ("RGB", "RGBA") else image.convert("RGBA")
    return image if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16") else image.convert("RGBA")
