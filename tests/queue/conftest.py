"""A real Celery worker (a `celery worker` subprocess) on the real embedded Redis, against the test database, and a
real SMTP server (aiosmtpd) that can fail or stall. Each test run has a queue of its own (so two runs sharing a
Redis never take each other's tasks), and no eager mode anywhere."""
import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


class Mailbox:
    """The SMTP server's behaviour and what it delivered: `fail` answers 451 to DATA, `stall` holds DATA unanswered
    (a message is delivered only once DATA has been answered 250)."""

    def __init__(self):
        self.delivered, self.fail, self.stall, self.data_seen = [], 0, False, 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_seen += 1
            if self.fail:
                self.fail -= 1
                return "451 4.3.0 try again later"
        while self.stall:
            await asyncio.sleep(0.1)
            if session.peer is None or server.transport is None or server.transport.is_closing():
                return "421 closing"
        if server.transport is None or server.transport.is_closing():
            return "421 closing"  # the sender died while we held it: nothing delivered
        with self.lock:
            self.delivered.append(envelope.content.decode("utf-8", "replace"))
        return "250 OK"

    def reset(self):
        with self.lock:
            self.delivered.clear()
            self.fail, self.stall, self.data_seen = 0, False, 0


@pytest.fixture(scope="session")
def smtp():
    box = Mailbox()
    with socket.socket() as s:  # a free port from the OS (aiosmtpd's start-up probe needs the number)
        s.bind(("127.0.0.1", 0))
        box.port = s.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


class Worker:
    def __init__(self, env, log):
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "geo_ourcity", "worker", "--pool", "prefork", "--concurrency", "1", "--without-gossip",
                 "--without-mingle", "-l", "info", "-n", f"test-{uuid.uuid4().hex[:8]}@%h"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, process_group=0)

    def wait_ready(self, seconds=60):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"the worker exited: {self.log.read_text()[-3000:]}")
            if " ready." in self.log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise AssertionError(f"the worker did not get ready: {self.log.read_text()[-3000:]}")

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def worker_env(django_db_setup, task_queue, smtp, tmp_path_factory):
    from geo_ourcity.celery import app

    assert app.conf.task_always_eager is False
    prefix = app.conf.broker_transport_options["global_keyprefix"]  # this run's (tests/conftest.py)
    env = {**os.environ, "OURCITY_DB_NAME": connection.settings_dict["NAME"], "OURCITY_CELERY_QUEUE": task_queue,
           "OURCITY_CELERY_KEY_PREFIX": prefix, "OURCITY_CELERY_VISIBILITY_TIMEOUT": "4",
           "OURCITY_CELERY_RESTORE_INTERVAL": "1", "OURCITY_CELERY_RESTORE_THROTTLE": "1",
           "OURCITY_CELERY_RETRY_BACKOFF": "1", "OURCITY_EMAIL_HOST": "127.0.0.1",
           "OURCITY_EMAIL_PORT": str(smtp.port), "OURCITY_EMAIL_TLS": "false", "OURCITY_DB_CONN_MAX_AGE": "0"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return {"env": env, "dir": tmp_path_factory.mktemp("celery")}


@pytest.fixture(scope="session")
def start_worker(worker_env):
    started = []

    def start():
        w = Worker(worker_env["env"], worker_env["dir"] / f"worker-{len(started)}.log")
        started.append(w)
        w.wait_ready()
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture(scope="module")
def worker(start_worker):
    """This module's worker (a test that kills a worker starts its own, in a module of its own)."""
    w = start_worker()
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _worker_idle_before_the_flush(request):
    """When a transactional test ends, pytest-django empties its tables (one TRUNCATE, which locks them one by
    one). The module's worker must first have finished what the test left it: a task that holds one of those
    tables and reads another deadlocks with the TRUNCATE, and the next test then starts on tables that were not
    emptied. (Every module here has the django_db mark, whose plugin fixture sets the database up before this
    conftest's autouse fixtures: so this teardown comes before its flush.)"""
    yield
    if "worker" in request.fixturenames:
        worker_idle()


def worker_idle(seconds=60):
    """Wait until this run's queue holds no task and none is unacknowledged: with late acknowledgement a task
    stays in the broker's `unacked` hash until it has finished (or, held for its retry time, until it has run).
    Twice in a row, 0.2 s apart: a task being handed out is, for an instant, in neither."""
    from django.core.cache import cache

    from geo_ourcity.celery import app

    prefix, queue = app.conf.broker_transport_options["global_keyprefix"], app.conf.task_default_queue
    client = cache._cache.get_client(write=True)  # the broker's Redis (tests/conftest.py, task_queue)
    end, quiet = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        lists = [k for k in client.scan_iter(match=f"{prefix}{queue}*") if client.type(k) == b"list"]
        busy = sum(client.llen(k) for k in lists) + client.hlen(f"{prefix}unacked")
        quiet = quiet + 1 if not busy else 0
        if quiet == 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"the worker did not finish its tasks within {seconds} s")


def wait_until(predicate, seconds=60, what="the condition"):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def service(demo_city):
    from tests.open311.conftest import make_service

    return make_service()


@pytest.fixture
def api_key(demo_city):
    from open311.keys import api_key_issue

    return api_key_issue(name="test-queue-integrator")[1]
