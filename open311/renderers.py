"""Open311 output formats. The JSON is the spec's "Spark convention" mapping of its XML, so both are built from
the same Python data: a top-level list (or dict) whose nested lists take their item element names from LIST_ITEMS.
"""
import io
import re
from xml.sax.saxutils import XMLGenerator

from rest_framework.renderers import JSONRenderer, BaseRenderer

# list element -> item element, as the spec names them (plus discovery's and the FixMyStreet updates extension's).
LIST_ITEMS = {
    "services": "service",
    "attributes": "attribute",
    "values": "value",
    "service_requests": "request",
    "service_requests_updates": "request_update",
    "errors": "error",
    "endpoints": "endpoint",
    "formats": "format",
}
# Characters XML 1.0 can't carry at all; input validation rejects them, this is the safety net for older data.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Open311JSONRenderer(JSONRenderer):
    media_type = "application/json"
    format = "json"
    charset = "utf-8"


class Open311XMLRenderer(BaseRenderer):
    """Renders the view's data under the element named by the view's `xml_root` (errors under `errors`)."""

    media_type = "text/xml"
    format = "xml"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        if response is not None and response.status_code >= 400:
            root = "errors"
        else:
            root = getattr(renderer_context.get("view"), "xml_root", "response")
        out = io.StringIO()
        xml = XMLGenerator(out, encoding="utf-8", short_empty_elements=True)
        xml.startDocument()
        _element(xml, root, data)
        xml.endDocument()
        return out.getvalue().encode("utf-8")


def _element(xml, name, value):
    xml.startElement(name, {})
    if isinstance(value, dict):
        for key, item in value.items():
            _element(xml, key, item)
    elif isinstance(value, (list, tuple)):
        item_name = LIST_ITEMS.get(name, "item")
        for item in value:
            _element(xml, item_name, item)
    elif value is not None:
        xml.characters(_text(value))
    xml.endElement(name)


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return _XML_ILLEGAL.sub("", str(value))
