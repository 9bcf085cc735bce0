"""Settings for geo_ourcity. Everything that differs between machines comes from the environment."""
from .env import BASE_DIR, database_config, env_bool, env_list, env_str

SECRET_KEY = env_str("SECRET_KEY", "dev-only-insecure-key-change-me")
DEBUG = env_bool("DEBUG", False)
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
    "facilities",
    "importers",
    "routing",
    "complaints",
    "open311",
    "web",
    "staff",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
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

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Europe/Moscow")
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

# Complaint photos (complaints.photos): largest upload, largest image (decompression bombs), photos per complaint.
PHOTO_MAX_BYTES = int(env_str("OURCITY_PHOTO_MAX_MB", "10")) * 1024 * 1024
PHOTO_MAX_PIXELS = int(env_str("OURCITY_PHOTO_MAX_MEGAPIXELS", "40")) * 1_000_000
PHOTO_MAX_PER_COMPLAINT = int(env_str("OURCITY_PHOTO_MAX_PER_COMPLAINT", "5"))

# Where import reports, rejects files and uploaded datasets are kept.
IMPORTS_DIR = env_str("OURCITY_IMPORTS_DIR", str(BASE_DIR / "var" / "imports"))
# Largest dataset file the admin upload page accepts.
IMPORT_UPLOAD_MAX_BYTES = int(env_str("OURCITY_IMPORT_UPLOAD_MAX_MB", "512")) * 1024 * 1024
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
}

# Open311 (open311/): what discovery tells integrators, and the largest POST body read (photos included).
OPEN311_CONTACT = env_str("OPEN311_CONTACT", "Open311 support of the city: open311@example.org")
OPEN311_KEY_SERVICE = env_str("OPEN311_KEY_SERVICE", "Ask the city's Open311 support for an api_key.")
OPEN311_MAX_BODY_BYTES = PHOTO_MAX_BYTES * PHOTO_MAX_PER_COMPLAINT + 1024 * 1024

# E-mail: the tracking code goes to residents who gave an address (complaints.mail, `manage.py
# send_tracking_codes`). By default messages are written to files under var/mail (the demo); set
# OURCITY_EMAIL_HOST to send them through an SMTP server. OURCITY_SITE_URL is the public address the links in them
# point at.
SITE_URL = env_str("OURCITY_SITE_URL", "http://127.0.0.1:8000").rstrip("/")
DEFAULT_FROM_EMAIL = env_str("OURCITY_EMAIL_FROM", "Наш город <no-reply@example.org>")
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
TRACKING_MAIL_MAX_ATTEMPTS = 5

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "WARNING")},
}
SILENCED_SYSTEM_CHECKS = ["gis.W001"]  # GDAL 3.6 (Debian 12); uploads are read by pyogrio, see docs/importing.md
