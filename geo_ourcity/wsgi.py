import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
django.setup(set_prefix=False)

from geo_ourcity.faults import WSGIHandler  # noqa: E402 - after django.setup(), as get_wsgi_application() does

# Django's handler, with a request that survives a Content-Type it can't decode (geo_ourcity/faults.py).
application = WSGIHandler()
