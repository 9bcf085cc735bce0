"""The test city (tests/second_city/city.txt) loaded as its data staff would: `manage.py import_dataset --commit`
for every file and spec, nothing else. tests/conftest.py loads it instead of the demo when OURCITY_TEST_CITY=second.

Its environment (test_second_city.py's runner sets it): the profile city.env (English only, Europe/Helsinki, the
site's name and mail sender) and a database of its own (OURCITY_DB_NAME)."""
import io
from pathlib import Path

from django.core.management import call_command

from tests.osm_extract import helsinki_pbf

HERE = Path(__file__).resolve().parent
ENV = {"OURCITY_TEST_CITY": "second", "OURCITY_DB_NAME": "geo_ourcity_testcity",
       "OURCITY_PROFILE": str(HERE / "city.env")}


def steps():
    for line in (HERE / "city.txt").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            file, spec = line.split()
            yield (helsinki_pbf() if file == "{helsinki.osm.pbf}" else HERE / file), HERE / spec


def load_city():
    for file, spec in steps():
        call_command("import_dataset", str(file), "--spec", str(spec), "--commit", stdout=io.StringIO())
