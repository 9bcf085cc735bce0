"""Fixtures of the admin tests: small registry rows made here, so the tests pass on an empty test database and
on one that a session fixture filled with the demo city alike (every code below is used only by these tests)."""
import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from facilities.models import AdminArea, AreaLevel, Authority, Dataset, Department, Facility, FacilityType


@pytest.fixture
def imports_dir(settings, tmp_path):
    """Import reports, rejects and uploads go to a fresh folder."""
    settings.IMPORTS_DIR = str(tmp_path / "imports")
    return tmp_path / "imports"


@pytest.fixture
def registry(db):
    """One row of each registry model (a facilities dataset brings its partition)."""
    authority = Authority.objects.create(code="t-admin-auth", name="Test authority", short_name="Test auth",
                                         kind=Authority.Kind.INSTITUTION, inn="7700000001", ogrn="1027700000001")
    department = Department.objects.create(authority=authority, name="Test department")
    area_dataset = Dataset.objects.create(code="t-admin-areas", target=Dataset.Target.AREAS)
    square = Polygon.from_bbox((37.60, 55.74, 37.62, 55.76))
    level, _ = AreaLevel.objects.get_or_create(code="district", defaults={"rank": 2})
    area = AdminArea.objects.create(name="Test district", level=level, okato="45999001",
                                    oktmo="45999001000", authority=authority, geom=MultiPolygon(square, srid=4326),
                                    dataset=area_dataset, source_key="t1")
    dataset = Dataset.objects.create(code="t-admin-facilities", target=Dataset.Target.FACILITIES)
    ftype = FacilityType.objects.create(code="t-admin-type", name_i18n={"ru": "Тест", "en": "Test type"})
    facility = Facility.objects.create(dataset=dataset, source_key="f1", type=ftype, owner=authority,
                                       name="Test school", geom=Point(37.61, 55.75, srid=4326))
    return {"authority": authority, "department": department, "area_dataset": area_dataset, "area": area,
            "dataset": dataset, "type": ftype, "facility": facility}
