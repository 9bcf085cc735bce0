"""Public photos of complaints: the resident's and the departments' answers' (complaints.photos re-encoded them on
upload, so they carry no EXIF or GPS). Served by the application itself: nothing else serves MEDIA_ROOT under
gunicorn. A photo of a hidden (moderated) complaint is a 404, like the complaint.
"""
from django.http import FileResponse, Http404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from django.db.models import Q

from .models import Answer, Photo, State

# Shared caches may keep a photo this long; also how long one may outlive the moderation hiding its complaint.
PHOTO_MAX_AGE = 300


@require_safe
def photo(request, photo_id):
    # An answer's photo is public with its answer: not while it waits for a moderator, nor once returned.
    found = (Photo.objects.filter(pk=photo_id).exclude(complaint__state=State.HIDDEN)
             .filter(Q(answer__isnull=True) | Q(answer__state=Answer.State.PUBLISHED))
             .only("id", "file", "content_type").first())
    if found is None:
        raise Http404("no such photo")
    try:
        response = FileResponse(found.file.open("rb"), content_type=found.content_type)
    except FileNotFoundError:  # the row outlived its file
        raise Http404("no such photo") from None
    # Only what the upload check produced (JPEG, PNG, WebP) is stored; nosniff keeps browsers to that type.
    response["X-Content-Type-Options"] = "nosniff"
    patch_cache_control(response, public=True, max_age=PHOTO_MAX_AGE)
    return response
