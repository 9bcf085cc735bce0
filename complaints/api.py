"""The project's REST API for duplicates before filing: GET /api/v1/nearby (docs/open311.md).

Thin: the input serializer checks the query, complaints.selectors.complaints_nearby answers, the output serializer
writes it: public fields only (never a tracking code, a confirmation key or a contact), open complaints only (never
hidden ones). Errors are the list of {code, description} of the house style (routing/api.py); rate-limited per
client (geo_ourcity.limits).
"""
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from geo_ourcity.languages import translated
from geo_ourcity.limits import client_key, rate_limited
from routing.api import ApiError, _error, _errors
from routing.models import Category

from .selectors import complaints_nearby
from .tracking import redact

DESCRIPTION_MAX = 1000  # characters of the description compared (a complaint's own may be longer)


class NearbyQuery(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90, help_text="WGS84 latitude")
    long = serializers.FloatField(min_value=-180, max_value=180, help_text="WGS84 longitude")
    service_code = serializers.CharField(required=False, max_length=64,
                                         help_text="an active Open311 service_code: only complaints of its category "
                                                   "group are answered (without it: every group)")
    description = serializers.CharField(required=False, max_length=DESCRIPTION_MAX, trim_whitespace=True,
                                        allow_blank=True,
                                        help_text="what the resident is writing: among equally near complaints, "
                                                  "the more alike comes first")

    def validate_description(self, text):
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
            raise serializers.ValidationError("must not hold control characters.")
        return text

    def validate_service_code(self, code):
        if any(ord(ch) < 32 for ch in code):
            raise serializers.ValidationError("must not hold control characters.")
        category = Category.objects.filter(code=code, active=True).first()
        if category is None:
            raise serializers.ValidationError(f"unknown service_code “{code[:64]}”: see the Open311 services list.")
        return category


class NearbyOut(serializers.Serializer):
    service_request_id = serializers.CharField(help_text="the complaint's public number (Open311 requests/{id})")
    service_code = serializers.CharField()
    service_name = serializers.CharField(help_text="in the request's language")
    distance_m = serializers.IntegerField(min_value=0, help_text="metres from the point, on the spheroid")
    status = serializers.ChoiceField(choices=["open"], help_text="Open311 status: always open here")
    state = serializers.CharField(help_text="the workflow state: new, assigned, in_progress, answered, reopened, transferred")
    description = serializers.CharField(help_text="the complaint's description (at most 300 characters)")
    requested_datetime = serializers.DateTimeField()
    lat = serializers.FloatField()
    long = serializers.FloatField()


def nearby_items(point, *, category=None, description=""):
    """The public items of the nearby open complaints (the API's and the web form's list), from the selector's one
    statement."""
    return [{"service_request_id": str(near.complaint_id), "service_code": near.service_code,
             "service_name": translated(near.service_name_i18n or {}) or near.service_code,
             "distance_m": round(near.distance_m), "status": "open", "state": near.state,
             "description": redact(near.description)[:300], "requested_datetime": near.submitted_at,
             "lat": near.lat, "long": near.lon}
            for near in complaints_nearby(point, category=category, description=description)]


class NearbyView(APIView):
    renderer_classes = [JSONRenderer]
    authentication_classes = []  # public, read-only: no session, no CSRF
    permission_classes = []

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # JSON whatever Accept or ?format= asks

    @extend_schema(
        operation_id="nearby_list", tags=["nearby"],
        summary="Open complaints near a point: the ones to follow instead of filing a duplicate",
        description=("The open complaints within 250 m of the point (of the service's category group, when "
                     "service_code is given), the five nearest first, by true distance; among equally near ones "
                     "(within 25 m of each other) the one whose description is more like `description` first "
                     "(trigram similarity). Public fields only; hidden, duplicate and resolved complaints never."),
        parameters=[NearbyQuery],
        responses={200: NearbyOut(many=True),
                   400: OpenApiResponse(ApiError(many=True), description="missing or bad coordinates, an unknown "
                                        "service_code, a too long description"),
                   429: OpenApiResponse(ApiError(many=True), description="too many requests (Retry-After)")},
        examples=[OpenApiExample("one pothole nearby", response_only=True, status_codes=["200"], value=[
            {"service_request_id": "1234", "service_code": "road-pothole", "service_name": "Pothole on the road",
             "distance_m": 38, "status": "open", "state": "assigned", "description": "A deep pothole",
             "requested_datetime": "2026-11-30T10:15:00+03:00", "lat": 55.7601, "long": 37.6187}])],
    )
    def get(self, request):
        wait = rate_limited(request, group="api-nearby", rate=settings.LIMIT_API_NEARBY, key=client_key(request))
        if wait is not None:
            return _error(429, [f"Too many requests: try again in {wait} s."], **{"Retry-After": str(wait)})
        query = NearbyQuery(data=request.query_params)
        if not query.is_valid():
            return _error(400, _errors(query.errors))
        data = query.validated_data
        items = nearby_items((data["long"], data["lat"]), category=data.get("service_code"),
                             description=data.get("description", ""))
        response = Response(NearbyOut(items, many=True).data)
        response["Cache-Control"] = "no-store"  # complaints change state; a description is personal
        return response
