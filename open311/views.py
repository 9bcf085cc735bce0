"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2): each view reads its input with an input serializer,
calls one service or selector, and answers with an output serializer, in the format of the URL's suffix.
"""
from django.conf import settings
from django.urls import reverse
from django.utils import translation
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints.services import complaint_create
from geo_ourcity.db_router import stale_reads_ok
from routing.models import Category

from . import limits, selectors
from .errors import exception_handler
from .keys import api_key_check_with_catalogue
from .renderers import Open311JSONRenderer, Open311XMLRenderer
from .serializers import (DiscoveryOutput, ErrorOutput, RequestCreatedOutput, RequestCreateForm, RequestCreateInput,
                          RequestCreateMultipart, RequestOutput, RequestsQueryInput, ServiceDefinitionOutput,
                          ServiceOutput, TokenOutput, UpdateOutput, UpdatesQueryInput, data_language,
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
        self.data_lang = data_language(request)
        translation.activate(self.lang)  # `locale` wins over Accept-Language, for messages too
        # An id or code in the path can't hold a NUL (PostgreSQL refuses it in any string): it names nothing.
        if any("\x00" in value for value in kwargs.values()):
            raise NotFound("No such Open311 resource.")

    def context(self):
        return {"request": self.request, "lang": self.lang, "data_lang": self.data_lang}

    def query(self, serializer_class):
        serializer, _params = serializer_class.from_params(self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer


FORMAT = OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["json", "xml"], description="response format")
LOCALE = OpenApiParameter("locale", str, description="ru or en (else Accept-Language; default ru)")
# DRF's `?format=` is not read here: the suffix alone decides (SuffixNegotiation).
NO_FORMAT_QUERY = OpenApiParameter("format", exclude=True)
RETRY_AFTER = OpenApiParameter("Retry-After", int, OpenApiParameter.HEADER, response=[503],
                               description="seconds to wait before trying again")


def errors(description):
    """An error answer as the spec gives it: a list of {code, description}."""
    return OpenApiResponse(ErrorOutput(many=True), description=description)


def schema(operation_id, parameters, responses, **kwargs):
    """The OpenAPI description of an Open311 operation: every one takes the format suffix, and may answer 400 (a
    request it can't read) and 503 (the database unreachable, with Retry-After) in the spec's error list."""
    responses = {400: errors("bad input: the description names the parameter"),
                 404: errors("no such resource, or a format other than json and xml"),
                 503: errors("temporarily unavailable: try again after Retry-After seconds"), **responses}
    return extend_schema(operation_id=operation_id, tags=["open311"],
                         parameters=[FORMAT, NO_FORMAT_QUERY, RETRY_AFTER, *parameters], responses=responses,
                         **kwargs)


NOT_FOUND = {404: errors("no such resource")}


class DiscoveryView(Open311View):
    xml_root = "discovery"

    @schema("open311_discovery", [], {200: DiscoveryOutput})
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

    @schema("open311_services", [LOCALE], {200: ServiceOutput(many=True)})
    def get(self, request, fmt):
        categories = Category.objects.filter(active=True).prefetch_related("attributes")
        return Response(ServiceOutput(categories, many=True, context=self.context()).data)


class ServiceDefinitionView(Open311View):
    xml_root = "service_definition"

    @schema("open311_service_definition", [LOCALE], {200: ServiceDefinitionOutput, **NOT_FOUND})
    def get(self, request, service_code, fmt):
        category = selectors.open311_service(service_code)
        if category is None:
            raise NotFound(f"service_code “{service_code[:64]}” was not found.")
        return Response(ServiceDefinitionOutput(category, context=self.context()).data)


class RequestListView(Open311View):
    @schema("open311_requests", [LOCALE, RequestsQueryInput], {200: RequestOutput(many=True)})
    @stale_reads_ok
    def get(self, request, fmt):
        requests = selectors.open311_request_search(**self.query(RequestsQueryInput).search_arguments())
        return Response(RequestOutput(requests, many=True, context=self.context()).data)

    @schema("open311_request_create", [],
            {201: RequestCreatedOutput(many=True), 403: errors("api_key missing, wrong or deactivated"),
             413: errors("the body is larger than the cap (photos included)"),
             415: errors("the body is neither form-urlencoded nor multipart"),
             429: errors("too many requests for this api_key, or with a wrong api_key from this client: see "
                         "Retry-After")},
            request={"application/x-www-form-urlencoded": RequestCreateForm,
                     "multipart/form-data": RequestCreateMultipart})
    def post(self, request, fmt):
        # The body's size is capped before it is read (settings.REQUEST_BODY_LIMITS: 413, open311.errors).
        key, catalogue_version = api_key_check_with_catalogue(
            (request.POST.get("api_key") or request.query_params.get("api_key") or "").strip())
        # 429 with Retry-After, in the Open311 error format (open311.errors): a client that keeps guessing keys
        # (whatever this key is), or a key past its limit. A wrong key counts as one more guess.
        limits.post_limits_check(request, key)
        if key is None:
            raise PermissionDenied("api_key is missing, wrong or no longer active.")
        data = RequestCreateInput.from_request(request, context={"catalogue_version": catalogue_version})
        data.is_valid(raise_exception=True)
        complaint = complaint_create(**data.complaint_fields(), source=key.name)
        return Response(RequestCreatedOutput([complaint], many=True, context=self.context()).data, status=201)


class RequestDetailView(Open311View):
    @schema("open311_request", [LOCALE], {200: RequestOutput(many=True), **NOT_FOUND})
    def get(self, request, service_request_id, fmt):
        complaint = selectors.open311_request(service_request_id)
        if complaint is None:
            if selectors.parse_request_id(service_request_id) is None:
                # Not echoed: it may be a tracking code, which no Open311 answer shows.
                raise NotFound("service_request_id is a request's numeric id, e.g. 123: no such request.")
            raise NotFound(f"service_request_id “{service_request_id}” was not found.")
        return Response(RequestOutput([complaint], many=True, context=self.context()).data)


class TokenView(Open311View):
    @schema("open311_token", [], {200: TokenOutput(many=True), **NOT_FOUND,
                                  429: errors("too many token lookups from this client: see Retry-After")})
    def get(self, request, token, fmt):
        limits.token_lookup_check(request)
        complaint = selectors.open311_token(token)
        if complaint is None:
            raise NotFound(f"token “{token[:64]}” was not found.")
        return Response(TokenOutput([complaint], many=True).data)


class UpdateListView(Open311View):
    """The FixMyStreet extension: public status changes since start_date, oldest first."""

    xml_root = "service_requests_updates"

    @schema("open311_updates", [LOCALE, UpdatesQueryInput], {200: UpdateOutput(many=True)})
    @stale_reads_ok
    def get(self, request, fmt):
        updates = selectors.open311_updates(**self.query(UpdatesQueryInput).validated_data)
        return Response(UpdateOutput(updates, many=True, context=self.context()).data)


@extend_schema(exclude=True)
class NotFoundView(Open311View):
    """Anything else under /open311/v2/: a 404 in the Open311 error format."""

    def dispatch(self, request, *args, **kwargs):
        kwargs["fmt"] = "xml" if request.path.endswith(".xml") else "json"
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, *args, **kwargs):
        raise NotFound("No such Open311 resource: see discovery.json.")

    post = put = patch = delete = get
