"""Settings for geo_ourcity. Everything that differs between machines comes from the environment."""
import datetime
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .env import (BASE_DIR, celery_redis_url, csp_source_of, database_config, env_bool, env_bounds, env_languages,
                  env_list, env_networks, env_rate, env_str, env_time_zone, refuse_to_start, secret_key,
                  storages_config)

DEBUG = env_bool("DEBUG", False)
# No key known to anyone else, ever: SECRET_KEY, SECRET_KEY_FILE or this checkout's var/secret_key (made by
# `make setup`). Without one, DEBUG gets a random key per process and anything else refuses to start.
SECRET_KEY = secret_key()
if not SECRET_KEY or SECRET_KEY.startswith(("django-insecure-", "dev-only-insecure-")):
    if not DEBUG:
        refuse_to_start("SECRET_KEY is not set: set SECRET_KEY or SECRET_KEY_FILE "
                        "(or run scripts/secret-key.sh for this checkout's own key in var/secret_key)")
    from django.core.management.utils import get_random_secret_key

    SECRET_KEY = get_random_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework_gis",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files: the API docs page loads nothing from a CDN
    "csp",
    "facilities",
    "importers",
    "routing",
    "complaints",
    "open311",
    "web",
    "staff",
]

MIDDLEWARE = [
    "geo_ourcity.faults.RequestFaultsMiddleware",  # first: before anything reads the request (see the Faults block)
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # before WhiteNoise: static files get the policy too
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "facilities.audit.AuditActorMiddleware",  # issue 8: the membership audit records the request's user
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "geo_ourcity.urls"
# Department staff log in to their workspace at /staff/ (staff/); the admin keeps its own login page.
LOGIN_URL = "staff:login"
LOGIN_REDIRECT_URL = "staff:tickets"
LOGOUT_REDIRECT_URL = "staff:login"
WSGI_APPLICATION = "geo_ourcity.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",  # {{ CSP_NONCE }} for the few inline scripts and styles
                "geo_ourcity.context.site",  # {{ brand_name }}, {{ site_contact }} (the city's profile; Django's auth views own site_name)
            ]
        },
    }
]

DATABASES = {"default": database_config()}
# Keep each worker's database connection between requests: a new PostgreSQL backend costs about 20 ms before its
# first PostGIS query (fork, then loading PostGIS, GEOS and PROJ), more than a whole map tile. Checked before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = int(env_str("OURCITY_DB_CONN_MAX_AGE", "300"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind a transaction-mode pooler (pgbouncer), OURCITY_DB_POOLED=1: consecutive transactions of one client may run
# on different server connections, so nothing may live in the session (docs/database.md). A server-side cursor
# does: Django's .iterator() then fetches in chunks from a client-side cursor instead.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env_bool("OURCITY_DB_POOLED", False)
# A read replica, DATABASE_REPLICA_URL: the reads that may be a little stale go there, except for a client that has
# just changed something (geo_ourcity.db_router, docs/database.md). In tests it mirrors the test database's name.
if env_str("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = {**database_config("DATABASE_REPLICA_URL"), "TEST": {"MIRROR": "default"},
                            **{k: DATABASES["default"][k] for k in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS",
                                                                     "DISABLE_SERVER_SIDE_CURSORS")}}
DATABASE_ROUTERS = ["geo_ourcity.db_router.ReplicaRouter"]
MIDDLEWARE.append("geo_ourcity.db_router.ReadYourWritesMiddleware")
REPLICA_FRESH_SECONDS = int(env_str("OURCITY_REPLICA_FRESH_SECONDS", "10"))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- The city's profile (issue 12; README "Configuration"): nothing here is any one city's. The demo city's values
# come from its profile file, data/demo.env (geo_ourcity.env: OURCITY_PROFILE), which the environment overrides.
# Languages in Django's codes: LANGUAGE_CODE the default (Open311 notices and mail are in it), LANGUAGES those the
# site offers. The UI is translated into Russian and English; another language shows English where it has no
# catalogue of its own (msgids are English). An unknown code or time zone stops the start with one line.
LANGUAGE_CODE, LANGUAGES = env_languages()
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
# The site's name (default: "Our City", translated) and the contact shown to residents (an address or a line).
SITE_NAME = env_str("OURCITY_SITE_NAME", "").strip()
SITE_CONTACT = env_str("OURCITY_SITE_CONTACT", "").strip()
# The residents' map's first view, west,south,east,north in degrees; unset, the extent of the city's areas.
MAP_BOUNDS = env_bounds("OURCITY_MAP_BOUNDS")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STATICFILES_DIRS = [BASE_DIR / "static"] if (BASE_DIR / "static").is_dir() else []
# Third-party browser assets (OpenLayers for the admin maps), installed from the npm registry by
# scripts/static-assets.sh at set-up time; served from here, never from a CDN.
STATICFILES_DIRS += [("vendor", BASE_DIR / "var" / "static-vendor")]
MEDIA_URL = "/media/"
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "var" / "media"))
# Files (issue 9 §3): photos ("default") and the import pipeline's files ("imports") through Django's storage API, so
# that every app server and worker sees the same ones: this machine's disk (MEDIA_ROOT, OURCITY_IMPORTS_DIR) by
# default, one private bucket of an S3-compatible store with OURCITY_STORAGE=s3 (geo_ourcity.env.storages_config,
# docs/deployment.md). Archives are still unpacked, and S3 files copied for GDAL, under OURCITY_IMPORTS_DIR/tmp.
try:
    STORAGES = storages_config()
except ImproperlyConfigured as _exc:
    refuse_to_start(str(_exc))
# Sessions (staff logins, the admin) in the database every app server reads: a login on one server holds on the
# next (tests/multiserver). Messages ride in a cookie or the session (Django's default), the read-your-writes mark
# in a signed cookie (geo_ourcity.db_router): nothing about a client stays in one process.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Complaint photos (complaints.photos): largest upload, largest image (decompression bombs), photos per complaint.
# 50 MP takes the largest photos phones make (12 MP usual; 48-50 MP sensors in full-resolution mode), and is read
# from the header before anything is decoded; photos are stored at most PHOTO_MAX_SIDE px on the long side.
PHOTO_MAX_BYTES = int(env_str("OURCITY_PHOTO_MAX_MB", "10")) * 1024 * 1024
PHOTO_MAX_PIXELS = int(env_str("OURCITY_PHOTO_MAX_MEGAPIXELS", "50")) * 1_000_000
PHOTO_MAX_SIDE = int(env_str("OURCITY_PHOTO_MAX_SIDE", "2560"))
PHOTO_MAX_PER_COMPLAINT = int(env_str("OURCITY_PHOTO_MAX_PER_COMPLAINT", "5"))

# Where import reports, rejects files and uploaded datasets are kept.
IMPORTS_DIR = env_str("OURCITY_IMPORTS_DIR", str(BASE_DIR / "var" / "imports"))
# Largest dataset file the admin upload page accepts.
IMPORT_UPLOAD_MAX_BYTES = int(env_str("OURCITY_IMPORT_UPLOAD_MAX_MB", "512")) * 1024 * 1024
# Archives (.zip, .kmz) an import unpacks: the most all members may inflate to, and the largest ratio of inflated
# to compressed size (of a member, and of the whole archive) before the import refuses it (importers.sources).
IMPORT_UNPACKED_MAX_BYTES = int(env_str("OURCITY_IMPORT_UNPACKED_MAX_MB", "1024")) * 1024 * 1024
IMPORT_UNPACK_MAX_RATIO = float(env_str("OURCITY_IMPORT_UNPACK_MAX_RATIO", "100"))
# Largest data.mos.ru JSON, CSV or YAML file (after unpacking): these are parsed whole in memory.
IMPORT_IN_MEMORY_MAX_BYTES = int(env_str("OURCITY_IMPORT_IN_MEMORY_MAX_MB", "256")) * 1024 * 1024
# OpenStreetMap extracts (importers.osm): the MB of memory GDAL's OSM driver may keep its node index in before it
# spills to a temporary file under IMPORTS_DIR/tmp/gdal.
IMPORT_OSM_MEMORY_MB = int(env_str("OURCITY_IMPORT_OSM_MEMORY_MB", "100"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# The residents' map: base-layer tiles (any XYZ URL; the map stays usable without them: district boundaries and
# complaints are the project's own vector layers) and their attribution.
TILE_URL = env_str("OURCITY_TILE_URL", "https://tile.openstreetmap.org/{z}/{x}/{y}.png")
TILE_ATTRIBUTION = env_str(
    "OURCITY_TILE_ATTRIBUTION",
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "geo_ourcity API",
    "VERSION": "0.1.0",
    "DESCRIPTION": "The project's REST API, Open311 GeoReport v2 included (docs/open311.md).",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"validatorUrl": None},  # Swagger UI would otherwise call validator.swagger.io
    "ENABLE_LIST_MECHANICS_ON_NON_2XX": True,  # Open311 errors are a list of {code, description}
    "SERVE_INCLUDE_SCHEMA": False,  # /api/schema/ does not describe itself
}

# Open311 (open311/): what discovery tells integrators, and the largest POST body read (photos included).
OPEN311_CONTACT = env_str("OPEN311_CONTACT", "Open311 support of the city: open311@example.org")
OPEN311_KEY_SERVICE = env_str("OPEN311_KEY_SERVICE", "Ask the city's Open311 support for an api_key.")
OPEN311_MAX_BODY_BYTES = PHOTO_MAX_BYTES * PHOTO_MAX_PER_COMPLAINT + 1024 * 1024

# Faults (geo_ourcity/faults.py): a protocol that owns a path prefix answers its errors in its own format there;
# while the database is unreachable every request is answered 503 with this Retry-After.
FAULT_RESPONDERS = {"/open311/": "open311.errors.fault_response"}
RETRY_AFTER_SECONDS = int(env_str("OURCITY_RETRY_AFTER_SECONDS", "5"))

# E-mail: the tracking code goes to residents who gave an address (complaints.mails, `manage.py
# send_tracking_codes`). By default messages are written to files under var/mail (the demo); set
# OURCITY_EMAIL_HOST to send them through an SMTP server. OURCITY_SITE_URL is the public address the links in them
# point at.
SITE_URL = env_str("OURCITY_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env_str("OURCITY_EMAIL_FROM", f"{SITE_NAME or 'Our City'} <no-reply@example.org>")
EMAIL_HOST = env_str("OURCITY_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(env_str("OURCITY_EMAIL_PORT", "587"))
    EMAIL_HOST_USER = env_str("OURCITY_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = env_str("OURCITY_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("OURCITY_EMAIL_TLS", True)
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env_str("OURCITY_EMAIL_DIR", str(BASE_DIR / "var" / "mail"))
TRACKING_MAIL_MAX_AGE_DAYS = 7  # a code mailed later than this is no use: such complaints are left alone

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
SILENCED_SYSTEM_CHECKS = ["gis.W001"]  # GDAL 3.6 (Debian 12); uploads are read by pyogrio, see docs/importing.md

# --- Abuse limits (issue 8 §4): the shared cache, rate limits, login lockouts, request body caps ----------
# The shared cache of every app server: the project's own Redis under var/redis (scripts/redis.sh), or REDIS_URL
# (redis://host:port/db, rediss://..., unix:///path/redis.sock?db=N). Keys are prefixed with the database name, so
# two projects (or a test run and the demo) sharing one Redis never read each other's counts.
REDIS_URL = env_str("REDIS_URL", "") or f"unix://{BASE_DIR}/var/redis/redis.sock"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": DATABASES["default"]["NAME"],
        "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
    }
}

# The task queue (geo_ourcity/celery.py, each app's tasks.py; docs/deployment.md): Celery with REDIS_URL's Redis as
# broker and result store, its keys under "<database name>:celery:" (apart from the cache's, and from another
# checkout or test run sharing the Redis). A task is acknowledged only once it has run (acks_late), so a worker
# killed mid-task loses nothing: its task goes back on the queue after CELERY_BROKER_TRANSPORT_OPTIONS'
# visibility_timeout and another worker runs it again (our tasks are idempotent). One task fetched at a time.
CELERY_BROKER_URL = celery_redis_url(REDIS_URL)
CELERY_RESULT_BACKEND = CELERY_BROKER_URL
CELERY_KEY_PREFIX = env_str("OURCITY_CELERY_KEY_PREFIX", "") or f"{DATABASES['default']['NAME']}:celery:"
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": CELERY_KEY_PREFIX,
    # seconds before an unacknowledged task (its worker died) is given to another worker; longer than any task
    "visibility_timeout": int(env_str("OURCITY_CELERY_VISIBILITY_TIMEOUT", "3600")),
    # each worker looks for such tasks every interval x throttle seconds (kombu's defaults: 10 x 10)
    "unacked_restore_interval": int(env_str("OURCITY_CELERY_RESTORE_INTERVAL", "10")),
    "unacked_restore_throttle": int(env_str("OURCITY_CELERY_RESTORE_THROTTLE", "10")),
    "socket_timeout": 5, "socket_connect_timeout": 5,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": CELERY_KEY_PREFIX}
CELERY_RESULT_EXPIRES = datetime.timedelta(days=1)
CELERY_TASK_DEFAULT_QUEUE = env_str("OURCITY_CELERY_QUEUE", "ourcity")
CELERY_TASK_ALWAYS_EAGER = False  # never: the tests run a real worker (tests/queue)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Our tasks' retries (read by each app's tasks): backoff 2, 4, 8 ... up to 10 min.
CELERY_TASK_RETRY_BACKOFF = int(env_str("OURCITY_CELERY_RETRY_BACKOFF", "2"))
CELERY_TASK_RETRY_BACKOFF_MAX = 600
CELERY_TASK_MAX_RETRIES = 8
# The category suggestion (routing.suggest, GET /api/v1/suggestions; docs/routing.md). A complaint is flagged on
# the staff list when another category's confidence reaches SUGGEST_FLAG_CONFIDENCE, or when it was filed under a
# catch-all category and another one reaches SUGGEST_CATCH_ALL_MIN. The learned model (once trained) weighs
# SUGGEST_MODEL_WEIGHT against the lexical scorer; it is trained when at least SUGGEST_MODEL_MIN_SAMPLES complaints
# can teach it, every SUGGEST_TRAIN_EVERY_S seconds (0: only by `manage.py train_suggestions`).
SUGGEST_FLAG_CONFIDENCE = float(env_str("OURCITY_SUGGEST_FLAG_CONFIDENCE", "0.6"))
SUGGEST_CATCH_ALL = env_list("OURCITY_SUGGEST_CATCH_ALL", "other")
SUGGEST_CATCH_ALL_MIN = float(env_str("OURCITY_SUGGEST_CATCH_ALL_MIN", "0.2"))
SUGGEST_MODEL_WEIGHT = float(env_str("OURCITY_SUGGEST_MODEL_WEIGHT", "0.5"))
SUGGEST_MODEL_MIN_SAMPLES = int(env_str("OURCITY_SUGGEST_MODEL_MIN_SAMPLES", "50"))
SUGGEST_TRAIN_EVERY_S = int(env_str("OURCITY_SUGGEST_TRAIN_EVERY_S", "86400"))
SUGGEST_DESCRIPTION_MAX = 4000  # characters, as a complaint's description
LIMIT_API_SUGGESTIONS = env_rate("OURCITY_LIMIT_API_SUGGESTIONS", "120/m")  # per client: the form asks as one types
# The scheduler (celery beat, its schedule file under var/): each app's periodic work, by task name.
CELERY_BEAT_SCHEDULE = {
    # an enqueue lost (Redis down at commit, a crash between commit and enqueue) is found within a minute
    "sweep-outbox": {"task": "complaints.tasks.outbox_sweep",
                     "schedule": float(env_str("OURCITY_OUTBOX_SWEEP_EVERY", "60"))},
    # --- issue 9, the rest of the queue (docs/deployment.md lists every task) ---
    "sweep-reroutes": {"task": "complaints.tasks.reroute_sweep", "schedule": 60.0},
    "mark-overdue": {"task": "complaints.tasks.overdue_mark", "schedule": float(env_str("OURCITY_OVERDUE_EVERY", "300"))},
    "statistics": {"task": "web.tasks.statistics_refresh", "schedule": float(env_str("OURCITY_STATISTICS_EVERY", "300"))},
    "sweep-imports": {"task": "importers.tasks.import_commit_sweep", "schedule": 300.0},
    "sweep-search-index": {"task": "facilities.tasks.search_sweep", "schedule": 300.0},
    "expire-exports": {"task": "staff.tasks.export_expire", "schedule": 3600.0},
}
# The category suggestion's model is learned again from the history this often (routing.suggest_model).
if SUGGEST_TRAIN_EVERY_S:
    CELERY_BEAT_SCHEDULE["train-suggestion-model"] = {"task": "routing.tasks.suggestion_model_train",
                                                      "schedule": float(SUGGEST_TRAIN_EVERY_S)}
# --- issue 9: the work on the queue (outbox, re-routes, exports); each read by the app that owns it ---
# The mail outbox (complaints.outbox): a failed mail is tried again after OUTBOX_RETRY_BACKOFF x 2^(n-1) seconds,
# up to OUTBOX_MAX_ATTEMPTS times, then shown as failed in the admin.
OUTBOX_RETRY_BACKOFF = int(env_str("OURCITY_OUTBOX_RETRY_BACKOFF", str(CELERY_TASK_RETRY_BACKOFF)))
OUTBOX_MAX_ATTEMPTS = int(env_str("OURCITY_OUTBOX_MAX_ATTEMPTS", "5"))
# Every worker relays the outbox rows written since its last look to the queue this often (seconds; 0: never, the
# sweep above still sends them): the writing request publishes nothing (complaints.outbox.outbox_relay).
OUTBOX_RELAY_EVERY = float(env_str("OURCITY_OUTBOX_RELAY_EVERY", "1"))
# A worker keeps its SMTP connection open from mail to mail; unused this many seconds, it is checked (NOOP) first.
OUTBOX_SMTP_IDLE_CHECK = float(env_str("OURCITY_OUTBOX_SMTP_IDLE_CHECK", "5"))
# Re-routes after admin edits and imports wait this long on the queue, so a burst of edits is one re-route.
REROUTE_COALESCE_SECONDS = float(env_str("OURCITY_REROUTE_COALESCE_SECONDS", "2"))
# A staff CSV export of more rows than this is made on the queue and kept (default_storage) for its asker.
EXPORT_QUEUE_ROWS = int(env_str("OURCITY_EXPORT_QUEUE_ROWS", "5000"))
EXPORT_KEEP_HOURS = int(env_str("OURCITY_EXPORT_KEEP_HOURS", "24"))
# --- issue 11 §4: the registry corrected by hand-ons (staff.corrections) ---
# A facility, area or category whose complaints were handed on to one other authority at least
# REGISTRY_CORRECTION_HANDONS times in the last REGISTRY_CORRECTION_WINDOW_DAYS days comes to data staff's queue
# (/staff/registry/), looked for every REGISTRY_CORRECTION_EVERY seconds by the scheduler (and on demand).
REGISTRY_CORRECTION_HANDONS = int(env_str("OURCITY_REGISTRY_CORRECTION_HANDONS", "3"))
REGISTRY_CORRECTION_WINDOW_DAYS = int(env_str("OURCITY_REGISTRY_CORRECTION_WINDOW_DAYS", "90"))
REGISTRY_CORRECTION_EVERY = float(env_str("OURCITY_REGISTRY_CORRECTION_EVERY", "3600"))
REGISTRY_CORRECTION_REASONS = 10  # reasons shown per proposed correction (the most recent)
CELERY_BEAT_SCHEDULE["registry-corrections"] = {"task": "staff.tasks.corrections_find",
                                                "schedule": REGISTRY_CORRECTION_EVERY}
# --- issue 10: the answer cycle (complaints.cycle, on the scheduler) ---
# The confirmation window itself is data (the catalogue's confirm_days, 15 by default); the reminder is sent this
# many days before it ends. Volunteers see the complaints answered within the last VOLUNTEER_RECENT_DAYS.
CONFIRM_REMINDER_DAYS = int(env_str("OURCITY_CONFIRM_REMINDER_DAYS", "3"))
VOLUNTEER_RECENT_DAYS = int(env_str("OURCITY_VOLUNTEER_RECENT_DAYS", "30"))
CELERY_BEAT_SCHEDULE["close-confirmations"] = {"task": "complaints.tasks.confirmations_close",
                                               "schedule": float(env_str("OURCITY_CONFIRMATIONS_EVERY", "300"))}
CELERY_BEAT_SCHEDULE["remind-confirmations"] = {"task": "complaints.tasks.confirmations_remind",
                                                "schedule": float(env_str("OURCITY_CONFIRMATIONS_EVERY", "300"))}
# beat's own state: in the serve directory, which scripts/serve.py gives the service user (var/serve by default)
CELERY_BEAT_SCHEDULE_FILENAME = env_str("OURCITY_CELERY_BEAT_SCHEDULE", "") or str(
    Path(env_str("OURCITY_SERVE_DIR", "") or BASE_DIR / "var" / "serve") / "celerybeat-schedule")
# Rate limits (counted in that cache, fixed windows; geo_ourcity.limits). A rate is N/period: 5/m, 100/h, 10/5m.
RATELIMIT_USE_CACHE = "default"
RATELIMIT_CACHE_PREFIX = "rl:"
RATELIMIT_FAIL_OPEN = env_bool("OURCITY_RATELIMIT_FAIL_OPEN", True)  # cache down: serve (True) or answer 429
LIMIT_WEB_REPORTS = env_rate("OURCITY_LIMIT_WEB_REPORTS", "5/m")
LIMIT_OPEN311_POSTS = env_rate("OURCITY_LIMIT_OPEN311_POSTS", "60/m")
LIMIT_CODE_LOOKUPS = env_rate("OURCITY_LIMIT_CODE_LOOKUPS", "20/m")
LIMIT_OPEN311_BAD_KEYS = env_rate("OURCITY_LIMIT_OPEN311_BAD_KEYS", "10/m")  # POSTs with a wrong api_key, per client
LIMIT_OPEN311_TOKEN_LOOKUPS = env_rate("OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS", "60/m")  # tokens/{token}, per client
# Which client a request comes from: REMOTE_ADDR, unless it is one of these proxies (addresses or networks, e.g.
# 127.0.0.1,10.0.0.0/8); then the address X-Forwarded-For names past them. Empty: the header is never read.
TRUSTED_PROXIES = env_networks("OURCITY_TRUSTED_PROXIES")
# Failed logins (django-axes, kept in the database): after this many failures for one user name, or from one
# client, logins are refused for the cool-off (429, staff.lockout); an administrator lifts a lockout in the admin
# (Axes > Access attempts) or with `manage.py axes_reset_username NAME` / `axes_reset_ip ADDRESS`.
INSTALLED_APPS += ["axes"]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(env_str("OURCITY_LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = datetime.timedelta(minutes=int(env_str("OURCITY_LOGIN_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "geo_ourcity.limits.client_ip"
AXES_LOCKOUT_CALLABLE = "staff.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lockout lasts the cool-off, Retry-After what is left of it
AXES_VERBOSE = False
# Request bodies: the first pattern that matches the path gives the cap (the setting named), refused with 413
# before the body is read (geo_ourcity.limits.BodySizeLimitMiddleware) and answered by the app's own view (None:
# the residents' short page, web.limits). A fourth item names the app's condition for the entry (a request that
# does not meet it gets the next matching entry's cap): the dataset upload's large cap is for users who may upload
# only (the front of `make demo` asks the same rule before it reads such a body: scripts/nginx.conf.template).
REQUEST_BODY_LIMITS = [
    (r"^/open311/", "OPEN311_MAX_BODY_BYTES", "open311.errors.body_too_large"),
    (r"^/admin/importers/importrun/upload/$", "IMPORT_REQUEST_MAX_BYTES", None,
     "importers.permissions.may_send_dataset"),
    (r"^/report/$", "REPORT_MAX_BODY_BYTES", None),
    (r"", "REQUEST_MAX_BODY_BYTES", None),
]
IMPORT_REQUEST_MAX_BYTES = IMPORT_UPLOAD_MAX_BYTES + 1024 * 1024  # the dataset and the form around it
REPORT_MAX_BODY_BYTES = PHOTO_MAX_BYTES * PHOTO_MAX_PER_COMPLAINT + 1024 * 1024  # the report: its photos
REQUEST_MAX_BODY_BYTES = PHOTO_MAX_BYTES * PHOTO_MAX_PER_COMPLAINT + 1024 * 1024  # anything else (staff answers)
REQUEST_LIMIT_RESPONDER = "web.limits.body_too_large"
MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                  "geo_ourcity.limits.BodySizeLimitMiddleware")
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # after AuthenticationMiddleware

# --- Security when deployed (README "Deploying") -------------------------------------------------------------
# OURCITY_HTTPS=1 when the site is served over HTTPS: cookies only over HTTPS, HTTP redirected to HTTPS, HSTS.
# Behind a TLS-terminating proxy set OURCITY_BEHIND_PROXY=1 too, and only if that proxy sets X-Forwarded-Proto
# itself (overwriting the client's): Django then takes "https" from it.
HTTPS = env_bool("OURCITY_HTTPS", False)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("OURCITY_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = int(env_str("OURCITY_HSTS_SECONDS", "31536000")) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OURCITY_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("OURCITY_HSTS_PRELOAD", True)
if env_bool("OURCITY_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
CSRF_TRUSTED_ORIGINS = env_list("OURCITY_CSRF_TRUSTED_ORIGINS", "")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# Content-Security-Policy (django-csp 4) on every response. Every script, style sheet, font and data request is
# the site's own; the only other origin is the base map's tile server (images), from OURCITY_TILE_URL. Inline
# scripts and <style> elements run only with the response's nonce (folium's map set-up; web/folium_map.py).
from csp.constants import NONCE, NONE, SELF  # noqa: E402 (the policy's keywords, for this block only)

_TILE_SOURCE = csp_source_of(TILE_URL)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:", *([_TILE_SOURCE] if _TILE_SOURCE else [])],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        **({"upgrade-insecure-requests": True} if HTTPS else {}),
    },
}

# --- issue 10 §1, hearing back (complaints.notify): follows, support, area alerts, residents' sign-in ---------
# Immediate area alerts are looked for every OURCITY_ALERTS_EVERY seconds; daily digests at OURCITY_DIGEST_HOUR
# (the city's time zone). Limits per client address and, for anything that mails an address, per address too.
from celery.schedules import crontab  # noqa: E402 (the digest's schedule, for this block only)

CELERY_BEAT_SCHEDULE["alerts-immediate"] = {"task": "complaints.tasks.alerts_sweep",
                                            "schedule": float(env_str("OURCITY_ALERTS_EVERY", "60"))}
CELERY_BEAT_SCHEDULE["alerts-daily"] = {"task": "complaints.tasks.alerts_digest",
                                        "schedule": crontab(minute=0, hour=int(env_str("OURCITY_DIGEST_HOUR", "8")))}
LIMIT_FOLLOWS = env_rate("OURCITY_LIMIT_FOLLOWS", "10/h")  # follows, alerts and sign-in links asked, per client
LIMIT_MAILS_PER_ADDRESS = env_rate("OURCITY_LIMIT_MAILS_PER_ADDRESS", "5/h")  # confirmation/sign-in mails, per address
LIMIT_SUPPORTS = env_rate("OURCITY_LIMIT_SUPPORTS", "30/h")  # "me too", per client
# --- Finding the place and not reporting twice (issue 10 §3-4: facilities.search, complaints.selectors) ---------
# The text search configuration whose stems the place search compares (PostgreSQL's: russian, english, simple, ...),
# by default the one of LANGUAGE_CODE's language; read by facilities' migration 0008 (see there to change it later).
_TS_CONFIGS = {"ru": "russian", "en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
               "pt": "portuguese", "nl": "dutch", "sv": "swedish", "fi": "finnish", "tr": "turkish"}
SEARCH_TEXT_CONFIG = env_str("OURCITY_SEARCH_TEXT_CONFIG", _TS_CONFIGS.get(LANGUAGE_CODE[:2], "simple"))
PLACE_SEARCH_QUERY_MAX = 200  # characters of a place search (longer: a 400)
NEARBY_RADIUS_M = 250  # open complaints of the same group within this many metres are shown before filing
NEARBY_LIMIT = 5
LIMIT_API_PLACES = env_rate("OURCITY_LIMIT_API_PLACES", "120/m")  # per client: the search box asks as one types
LIMIT_API_NEARBY = env_rate("OURCITY_LIMIT_API_NEARBY", "120/m")
