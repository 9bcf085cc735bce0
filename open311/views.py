"""Open311 GeoReport v2 (wiki.open311.org/GeoReport_v2): each view reads its input with an input serializer,
calls one service or selector, and answers with an output serializer, in the format of the URL's suffix.
"""
from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers as s
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from complaints.services import complaint_create
from routing.models import Category

from . import selectors
from .errors import exception_handler, open311_error
from .keys import api_key_check
from .renderers import Open311JSONRenderer, Open311XMLRenderer
from .serializers import (RequestCreatedOutput, RequestCreateInput, RequestOutput, RequestsQueryInput,
                          ServiceDefinitionOutput, ServiceOutput, TokenOutput, UpdateOutput, UpdatesQueryInput,
                          language, window)

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

    def context(self):
        return {"request": self.request, "lang": language(self.request)}

    def query(self, serializer_class):
        serializer, _params = serializer_class.from_params(self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


FORMAT = OpenApiParameter("fmt", str, OpenApiParameter.PATH, enum=["json", "xml"], description="response format")
LOCALE = OpenApiParameter("locale", str, description="ru or en (else Accept-Language; default ru)")
ERRORS = inline_serializer("Open311Error", {"code": s.IntegerField(), "description": s.CharField()}, many=True)


@extend_schema(tags=["open311"], parameters=[FORMAT], responses={200: OpenApiTypes.OBJECT})
class DiscoveryView(Open311View):
    xml_root = "discovery"

    def get(self, request, fmt):
        url = request.build_absolute_uri(reverse("open311:discovery", kwargs={"fmt": "json"})).rsplit("/", 1)[0]
        return Response({
            "changeset": CHANGESET,
            "contact": settings.OPEN311_CONTACT,
            "key_service": settings.OPEN311_KEY_SERVICE,
            "endpoints": [{"specification": SPECIFICATION, "url": url, "changeset": CHANGESET, "type": "production",
                           "formats": ["text/xml", "application/json"]}],
        })


@extend_schema(tags=["open311"], parameters=[FORMAT, LOCALE], responses={200: ServiceOutput(many=True)})
class ServiceListView(Open311View):
    xml_root = "services"

    def get(self, request, fmt):
        categories = Category.objects.filter(active=True).prefetch_related("attributes")
        return Response(ServiceOutput(categories, many=True, context=self.context()).data)


@extend_schema(tags=["open311"], parameters=[FORMAT, LOCALE], responses={200: ServiceDefinitionOutput, 404: ERRORS})
class ServiceDefinitionView(Open311View):
    xml_root = "service_definition"

    def get(self, request, service_code, fmt):
        category = Category.objects.filter(code=service_code, active=True).prefetch_related("attributes").first()
        if category is None:
            raise NotFound(f"service_code “{service_code}” was not found.")
        return Response(ServiceDefinitionOutput(category, context=self.context()).data)


class RequestListView(Open311View):
    @extend_schema(tags=["open311"], parameters=[FORMAT, LOCALE, RequestsQueryInput],
                   responses={200: RequestOutput(many=True), 400: ERRORS})
    def get(self, request, fmt):
        params = self.query(RequestsQueryInput)
        near = (params["long"], params["lat"], params["radius"]) if "lat" in params else None
        requests = selectors.open311_request_search(
            service_request_id=params.get("service_request_id", ()), service_code=params.get("service_code", ()),
            status=params.get("status", ()), requested=window(params), updated_after=params.get("updated_after"),
            updated_before=params.get("updated_before"), near=near, page=params["page"],
            page_size=params["page_size"])
        return Response(RequestOutput(requests, many=True, context=self.context()).data)

    @extend_schema(tags=["open311"], parameters=[FORMAT],
                   request={"application/x-www-form-urlencoded": RequestCreateInput,
                            "multipart/form-data": RequestCreateInput},
                   responses={201: RequestCreatedOutput(many=True), 400: ERRORS, 403: ERRORS})
    def post(self, request, fmt):
        if content_length(request) > settings.OPEN311_MAX_BODY_BYTES:
            return open311_error(400, f"The request is larger than {settings.OPEN311_MAX_BODY_BYTES / 2**20:.1f} MB.")
        key = api_key_check((request.POST.get("api_key") or request.query_params.get("api_key") or "").strip())
        if key is None:
            raise PermissionDenied("api_key is missing, wrong or no longer active.")
        data = RequestCreateInput.from_request(request)
        data.is_valid(raise_exception=True)
        complaint = complaint_create(**data.complaint_fields(), source=key.name)
        return Response(RequestCreatedOutput([complaint], many=True, context=self.context()).data, status=201)


@extend_schema(tags=["open311"], parameters=[FORMAT, LOCALE], responses={200: RequestOutput(many=True), 404: ERRORS})
class RequestDetailView(Open311View):
    def get(self, request, service_request_id, fmt):
        complaint = selectors.open311_request(service_request_id)
        if complaint is None:
            raise NotFound(f"service_request_id “{service_request_id}” was not found.")
        return Response(RequestOutput([complaint], many=True, context=self.context()).data)


@extend_schema(tags=["open311"], parameters=[FORMAT], responses={200: TokenOutput(many=True), 404: ERRORS})
class TokenView(Open311View):
    def get(self, request, token, fmt):
        complaint = selectors.open311_token(token)
        if complaint is None:
            raise NotFound(f"token “{token}” was not found.")
        return Response(TokenOutput([complaint], many=True).data)


@extend_schema(tags=["open311"], parameters=[FORMAT, UpdatesQueryInput], responses={200: UpdateOutput(many=True)})
class UpdateListView(Open311View):
    """The FixMyStreet extension: public status changes since start_date, oldest first."""

    xml_root = "service_requests_updates"

    def get(self, request, fmt):
        updates = selectors.open311_updates(**self.query(UpdatesQueryInput))
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
