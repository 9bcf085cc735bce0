"""A real S3 API over HTTP for tests: moto's standalone server (`python -m moto.server`), a subprocess of its own
on a free port of 127.0.0.1, so that django-storages and boto3 talk to it as to any S3-compatible store (signed
HTTP requests, multipart uploads, real status codes). Nothing of it runs inside the test process."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def s3_server(log_dir):
    """Yields the endpoint URL of a fresh moto server; stops it (its process only) at the end."""
    for _attempt in range(5):  # the port is free when chosen; another process may take it before the server
        port = free_port()
        log = open(os.path.join(log_dir, f"moto-{port}.log"), "wb")
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MOTO_CALL_RESET_API": "0"})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/moto-api/data.json", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        if proc.poll() is None:
            break
        log.close()
    else:
        raise RuntimeError(f"moto's S3 server did not start (see {log_dir})")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def client(endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION,
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))


def storage_environ(endpoint, bucket):
    """The environment of an app server (or the settings' storages_config) that keeps its files in `bucket`."""
    return {"OURCITY_STORAGE": "s3", "OURCITY_S3_BUCKET": bucket, "OURCITY_S3_ENDPOINT_URL": endpoint,
            "OURCITY_S3_REGION": REGION, "OURCITY_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


def keys(endpoint, bucket, prefix=""):
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))
