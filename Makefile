# geo_ourcity: `make demo` runs the service with the demo city (data/demo.txt); `make test` runs the whole test suite.
# Both do every set-up step themselves (Debian packages, .venv, the embedded PostgreSQL + PostGIS, migrations).
SHELL := /bin/bash
PY := .venv/bin/python
PORT ?= 8000
# The task queue's worker processes in make demo (docs/deployment.md).
WORKER_CONCURRENCY ?= 4
STAMP := .venv/.requirements-$(shell cat requirements.txt | md5sum | cut -c1-12)

.PHONY: setup system venv assets secret db db-stop redis redis-stop migrate demo demo-data test bench clean

setup: system venv assets secret

# This checkout's own SECRET_KEY in var/secret_key (0600): DEBUG is off in the demo and the tests.
secret:
	@scripts/secret-key.sh

assets:
	@scripts/static-assets.sh

system:
	@scripts/system-deps.sh

venv: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || python3 -m venv .venv
	@echo "Installing Python packages into .venv"
	@.venv/bin/pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	@.venv/bin/pip install -q -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
	@.venv/bin/python -c "import django, django.contrib.gis.gdal, pyogrio, shapely" 
	@rm -f .venv/.requirements-*; touch $(STAMP)

db: setup
	@scripts/pg.sh start

db-stop:
	@scripts/pg.sh stop

# The embedded Redis under var/redis (a unix socket, no TCP): the shared cache (rate limits), unless REDIS_URL.
redis: setup
	@scripts/redis.sh start

redis-stop:
	@scripts/redis.sh stop

migrate: db
	@$(PY) manage.py migrate --noinput -v 0

demo-data: migrate
	@$(PY) manage.py load_demo
	@$(PY) manage.py load_demo_complaints
	@# the category suggestion learned from that history, and the data-staff queue of registry corrections
	@$(PY) manage.py train_suggestions --no-evaluate
	@$(PY) manage.py registry_corrections

demo: demo-data redis
	@$(PY) manage.py collectstatic --noinput -v 0
	@$(PY) manage.py demo_banner --port $(PORT)
	@# nginx front + gunicorn, the task queue's worker and its scheduler, as an unprivileged user: docs/deployment.md
	@exec $(PY) scripts/serve.py --port $(PORT) \
	  --process worker="$(PY) -m celery -A geo_ourcity worker -l info --concurrency $(WORKER_CONCURRENCY) -n worker@%h" \
	  --process beat="$(PY) -m celery -A geo_ourcity beat -l info"

test: db redis
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: db redis
	@$(PY) bench/run.py

clean: db-stop redis-stop
	rm -rf var/
