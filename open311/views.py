"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2): each view reads its input with an input serializer,
calls one service or selector, and answers with an output serializer, in the format of the URL's suffix.
"""
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as s
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints.services import complaint_create
from geo_ourcity.db_router import stale_reads_ok
from routing.models import Category

from . import selectors
from .errors import exception_handler, open311_error
from .keys import api_key_check_with_catalogue
from .renderers import Open311JSONRenderer, Open311XMLRenderer
from .serializers import (RequestCreatedOutput, RequestCreateInput, RequestOutput, RequestsQueryInput,
                          ServiceDefinitionOutput, ServiceOutput, TokenOutput, UpdateOutput, UpdatesQueryInput,
                          language)

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this API last changed in a way an integrator should notice (discovery's `changeset`).
CHANGESET = "2026-11-23T00:00:00+03:00"


class SuffixNegotiation(DefaultContentNegotiation):
    """The URL's .json/.xml decides the format, whatever the Accept header says (the spec's rule)."""

    def select_renderer(self, request, renderers, format_suffix=None):
        for renderer in renderers:
            if renderer.format == (format_suffix or "xml"):
                return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class Open311View(APIView):
    renderer_classes = [Open311JSONRenderer, Open311XMLRenderer]
    parser_classes = [FormParser, MultiPartParser]
    content_negotiation_class = SuffixNegotiation
    authentication_classes = []  # reads are public; a POST is authorised by its api_key
    permission_classes = []
    xml_root = "service_requests"

    def get_exception_handler(self):
        return exception_handler

    def get_format_suffix(self, **kwargs):
        return kwargs.get("fmt")

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.lang = language(request)
        translation.activate(self.lang)  # `locale` wins over Accept-Language, for messages too
        # An id or code in the path can't hold a NUL (PostgreSQL refuses it in any string): it names nothing.
        if any("\x00" in value for value in kwargs.values()):
            raise NotFound("No such Open311 resource.")

    def context(self):
        return {"request": self.request, "lang": self.lang}

    def query(self, serializer_class):
        serializer, _params = serializer_class.from_params(self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer


FORMAT = OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["json", "xml"], description="response format")
LOCALE = OpenApiParameter("locale", str, description="ru or en (else Accept-Language; default ru)")
ERRORS = inline_serializer("Open311Error", {"code": s.IntegerField(), "description": s.CharField()}, many=True)


def schema(operation_id, parameters, **kwargs):
    """The OpenAPI description of an Open311 operation (every one takes the format suffix)."""
    return extend_schema(operation_id=operation_id, tags=["open311"], parameters=[FORMAT, *parameters], **kwargs)


class DiscoveryView(Open311View):
    xml_root = "discovery"

    @schema("open311_discovery", [], responses={200: OpenApiTypes.OBJECT})
    def get(self, request, fmt):
        url = request.build_absolute_uri(reverse("open311:discovery", kwargs={"fmt": "json"})).rsplit("/", 1)[0]
        return Response({
            "changeset": CHANGESET,
            "contact": settings.OPEN311_CONTACT,
            "key_service": settings.OPEN311_KEY_SERVICE,
            "endpoints": [{"specification": SPECIFICATION, "url": url, "changeset": CHANGESET, "type": "production",
                           "formats": ["text/xml", "application/json"]}],
        })


class ServiceListView(Open311View):
    xml_root = "services"

    @schema("open311_services", [LOCALE], responses={200: ServiceOutput(many=True)})
    def get(self, request, fmt):
        categories = Category.objects.filter(active=True).prefetch_related("attributes")
        return Response(ServiceOutput(categories, many=True, context=self.context()).data)


class ServiceDefinitionView(Open311View):
    xml_root = "service_definition"

    @schema("open311_service_definition", [LOCALE], responses={200: ServiceDefinitionOutput, 404: ERRORS})
    def get(self, request, service_code, fmt):
        category = selectors.open311_service(service_code)
        if category is None:
            raise NotFound(f"service_code “{service_code[:64]}” was not found.")
        return Response(ServiceDefinitionOutput(category, context=self.context()).data)


class RequestListView(Open311View):
    @schema("open311_requests", [LOCALE, RequestsQueryInput], responses={200: RequestOutput(many=True), 400: ERRORS})
    @stale_reads_ok
    def get(self, request, fmt):
        requests = selectors.open311_request_search(**self.query(RequestsQueryInput).search_arguments())
        return Response(RequestOutput(requests, many=True, context=self.context()).data)

    @schema("open311_request_create", [],
            request={"application/x-www-form-urlencoded": RequestCreateInput,
                     "multipart/form-data": RequestCreateInput},
            responses={201: RequestCreatedOutput(many=True), 400: ERRORS, 403: ERRORS})
    def post(self, request, fmt):
        if content_length(request) > settings.OPEN311_MAX_BODY_BYTES:
            return open311_error(400, f"The request is larger than {settings.OPEN311_MAX_BODY_BYTES / 2**20:.1f} MB.")
        key, catalogue_version = api_key_check_with_catalogue(
            (request.POST.get("api_key") or request.query_params.get("api_key") or "").strip())
        if key is None:
            raise PermissionDenied("api_key is missing, wrong or no longer active.")
        data = RequestCreateInput.from_request(request, context={"catalogue_version": catalogue_version})
        data.is_valid(raise_exception=True)
        complaint = complaint_create(**data.complaint_fields(), source=key.name)
        return Response(RequestCreatedOutput.answer(complaint, self.lang), status=201)


class RequestDetailView(Open311View):
    @schema("open311_request", [LOCALE], responses={200: RequestOutput(many=True), 404: ERRORS})
    def get(self, request, service_request_id, fmt):
        complaint = selectors.open311_request(service_request_id)
        if complaint is None:
            if selectors.parse_request_id(service_request_id) is None:
                # Not echoed: it may be a tracking code, which no Open311 answer shows.
                raise NotFound("service_request_id is a request's numeric id, e.g. 123: no such request.")
            raise NotFound(f"service_request_id “{service_request_id}” was not found.")
        return Response(RequestOutput([complaint], many=True, context=self.context()).data)


class TokenView(Open311View):
    @schema("open311_token", [], responses={200: TokenOutput(many=True), 404: ERRORS})
    def get(self, request, token, fmt):
        complaint = selectors.open311_token(token)
        if complaint is None:
            raise NotFound(f"token “{token[:64]}” was not found.")
        return Response(TokenOutput([complaint], many=True).data)


class UpdateListView(Open311View):
    """The FixMyStreet extension: public status changes since start_date, oldest first."""

    xml_root = "service_requests_updates"

    @schema("open311_updates", [UpdatesQueryInput], responses={200: UpdateOutput(many=True)})
    @stale_reads_ok
    def get(self, request, fmt):
        updates = selectors.open311_updates(**self.query(UpdatesQueryInput).validated_data)
        return Response(UpdateOutput(updates, many=True, context=self.context()).data)


def content_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django reads it: no body


@extend_schema(exclude=True)
class NotFoundView(Open311View):
    """Anything else under /open311/v2/: a 404 in the Open311 error format."""

    def dispatch(self, request, *args, **kwargs):
        kwargs["fmt"] = "xml" if request.path.endswith(".xml") else "json"
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        raise NotFound("No such Open311 resource: see discovery.json.")

    post = put = patch = delete = get
