"""Settings for the Open311 HTTP benchmark's server: the project's own, plus the bench-only floor URL."""
from geo_ourcity.settings import *  # noqa: F401,F403

ROOT_URLCONF = "open311_bench_urls"
