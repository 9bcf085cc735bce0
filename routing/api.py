"""The project's REST API for the category suggestion: GET /api/v1/suggestions (docs/open311.md, docs/routing.md),
and the place search: GET /api/v1/places (facilities.search).

Thin: the input serializer checks the query, routing.suggest answers, the output serializer writes it. Errors are
the list of {code, description} that Open311 integrators already read; rate-limited per client like the other
public endpoints (geo_ourcity.limits).
"""
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from facilities.search import places_search
from geo_ourcity.limits import client_key, rate_limited

from .suggest import OutsideCity, suggest

MAX_LIMIT = 10


class SuggestionQuery(serializers.Serializer):
    description = serializers.CharField(max_length=settings.SUGGEST_DESCRIPTION_MAX, trim_whitespace=True,
                                        help_text="what the resident wrote (any language)")
    lat = serializers.FloatField(required=False, min_value=-90, max_value=90, help_text="WGS84 latitude")
    long = serializers.FloatField(required=False, min_value=-180, max_value=180, help_text="WGS84 longitude")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=5,
                                     help_text=f"how many suggestions, 1-{MAX_LIMIT}")

    def validate(self, data):
        given = [name for name in ("lat", "long") if name in data]
        if len(given) == 1:
            raise serializers.ValidationError("lat and long go together: give both or neither")
        return data  # NaN and infinities are refused by FloatField itself


class SuggestionOut(serializers.Serializer):
    service_code = serializers.CharField(help_text="an active Open311 service_code")
    confidence = serializers.FloatField(min_value=0, max_value=1, help_text="0..1; the list is best first")
    model = serializers.CharField(help_text="what answered: lexical-N, or lexical-N+history-vM (the learned "
                                            "model's version)")


class ApiError(serializers.Serializer):
    code = serializers.IntegerField()
    description = serializers.CharField()


def _errors(detail, prefix=""):
    """DRF's error detail as one line per problem."""
    if isinstance(detail, dict):
        return [line for key, value in detail.items()
                for line in _errors(value, "" if key == "non_field_errors" else f"{key}: ")]
    if isinstance(detail, list):
        return [line for item in detail for line in _errors(item, prefix)]
    return [f"{prefix}{detail}"]


def _error(status, lines, **headers):
    response = Response([{"code": status, "description": line[:300]} for line in lines], status=status)
    for name, value in headers.items():
        response[name] = value
    return response


class SuggestionsView(APIView):
    renderer_classes = [JSONRenderer]
    authentication_classes = []  # public, read-only: no session, no CSRF
    permission_classes = []

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type  # JSON whatever Accept or ?format= asks

    @extend_schema(
        operation_id="suggestions_list", tags=["suggestions"],
        summary="Suggest the category (Open311 service) from a description and, optionally, a place",
        description=("The active catalogue's services, best first, with a confidence of 0..1 each, from the "
                     "description's words (the catalogue's names, descriptions and keywords; word forms and typos "
                     "included), the facilities under or near the point, and the model learned from the city's "
                     "history when one is trained. Each item names the model that answered (also in the "
                     "X-Suggestion-Model header)."),
        parameters=[SuggestionQuery],
        responses={200: SuggestionOut(many=True),
                   400: OpenApiResponse(ApiError(many=True), description="no or too long description, bad or "
                                        "half coordinates, a point outside the city"),
                   429: OpenApiResponse(ApiError(many=True), description="too many requests (Retry-After)")},
        examples=[OpenApiExample("a pothole", response_only=True, status_codes=["200"], value=[
            {"service_code": "road-pothole", "confidence": 0.71, "model": "lexical-1"},
            {"service_code": "yard-pothole", "confidence": 0.22, "model": "lexical-1"}])],
    )
    def get(self, request):
        wait = rate_limited(request, group="api-suggestions", rate=settings.LIMIT_API_SUGGESTIONS,
                            key=client_key(request))
        if wait is not None:
            return _error(429, [f"Too many requests: try again in {wait} s."], **{"Retry-After": str(wait)})
        query = SuggestionQuery(data=request.query_params)
        if not query.is_valid():
            return _error(400, _errors(query.errors))
        data = query.validated_data
        point = (data["long"], data["lat"]) if "lat" in data else None
        try:
            result = suggest(data["description"], point, limit=data["limit"])
        except OutsideCity:
            return _error(400, ["lat/long: the point is outside the city (no district covers it)"])
        body = SuggestionOut([{"service_code": s.service_code, "confidence": s.confidence, "model": result.model}
                              for s in result.suggestions], many=True).data
        response = Response(body)
        response["X-Suggestion-Model"] = result.model
        response["Cache-Control"] = "no-store"  # the model and the catalogue change; a description is personal
        return response


# --- finding a place: GET /api/v1/places (facilities.search) -------------------------------------------------

PLACES_MAX = 10


class PlaceQuery(serializers.Serializer):
    q = serializers.CharField(min_length=2, max_length=settings.PLACE_SEARCH_QUERY_MAX, trim_whitespace=True,
                              help_text="a name or an address, as typed (typos and word forms are forgiven)")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=PLACES_MAX, default=8,
                                     help_text=f"how many places, 1-{PLACES_MAX}")

    def validate_q(self, text):
        if any(ord(ch) < 32 for ch in text):
            raise serializers.ValidationError("must not hold control characters.")
        return text


class PlaceOut(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["area", "address", "facility"],
                                   help_text="an admin area, an address of the address register, a facility")
    id = serializers.IntegerField()
    label = serializers.CharField(help_text="the name or address as the registry holds it")
    detail = serializers.CharField(help_text="the area's level, the address's district, the facility's type")
    lat = serializers.FloatField()
    long = serializers.FloatField()
    bbox = serializers.ListField(child=serializers.FloatField(), allow_null=True, min_length=4, max_length=4,
                                 help_text="an area's box, [west, south, east, north]: the map fits it")


class PlacesView(APIView):
    renderer_classes = [JSONRenderer]
    authentication_classes = []  # public, read-only: no session, no CSRF
    permission_classes = []

    def perform_content_negotiation(self, request, force=False):
        return JSONRenderer(), JSONRenderer.media_type

    @extend_schema(
        operation_id="places_list", tags=["places"],
        summary="Find a place by its name or address",
        description=("The registry's own names: districts and okrugs, the address register's addresses, the "
                     "facilities' names and addresses; best first. Word forms (stems in the city's language) and "
                     "typos (trigram similarity to the names' words) are forgiven; the last word also matches as "
                     "the start of a word."),
        parameters=[PlaceQuery],
        responses={200: PlaceOut(many=True),
                   400: OpenApiResponse(ApiError(many=True), description="no, too short or too long query"),
                   429: OpenApiResponse(ApiError(many=True), description="too many requests (Retry-After)")},
        examples=[OpenApiExample("a street and house", response_only=True, status_codes=["200"], value=[
            {"kind": "address", "id": 17, "label": "улица Маршала Тухачевского, дом 20, корпус 1",
             "detail": "район Хорошёво-Мнёвники", "lat": 55.78383, "long": 37.47961, "bbox": None}])],
    )
    def get(self, request):
        wait = rate_limited(request, group="api-places", rate=settings.LIMIT_API_PLACES, key=client_key(request))
        if wait is not None:
            return _error(429, [f"Too many requests: try again in {wait} s."], **{"Retry-After": str(wait)})
        query = PlaceQuery(data=request.query_params)
        if not query.is_valid():
            return _error(400, _errors(query.errors))
        found = places_search(query.validated_data["q"], limit=query.validated_data["limit"])
        body = PlaceOut([{"kind": p.kind, "id": p.id, "label": p.label, "detail": p.detail, "lat": p.lat,
                          "long": p.lon, "bbox": list(p.bbox) if p.bbox else None} for p in found], many=True).data
        response = Response(body)
        response["Cache-Control"] = "public, max-age=60"  # the registry changes by imports, not by the minute
        return response
