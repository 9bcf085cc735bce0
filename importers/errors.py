import re
import sys
import tempfile

from django.conf import settings


class ImportFailure(Exception):
    """An import that can not go on: bad file, bad spec, wrong CRS. The message is one line for a person."""


def public_text(text, names=None):
    """A message with no path of this server in it.

    The paths in `names` become the names their users know (the upload's name, the spec's name); any other path
    under the project's folders, the imports folder or the temporary folder becomes its last part."""
    text = str(text)
    for where, shown in sorted((names or {}).items(), key=lambda item: -len(item[0])):
        if where:
            text = text.replace(where, shown)
    roots = {str(settings.IMPORTS_DIR), str(settings.BASE_DIR), tempfile.gettempdir(), sys.prefix}
    for root in sorted((r.rstrip("/") for r in roots if r and r != "/"), key=len, reverse=True):
        text = re.sub(re.escape(root) + r"(/[^\s'\"]*)?", lambda m: (m.group(1) or "/").rstrip("/").rsplit("/", 1)[-1]
                      or "(a server folder)", text)
    return text
