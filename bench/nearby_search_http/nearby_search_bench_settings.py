"""Settings for the nearby and place-search HTTP benchmark's server: the project's own, plus the bench-only floors."""
from geo_ourcity.settings import *  # noqa: F401,F403

ROOT_URLCONF = "nearby_search_bench_urls"
