"""Fixtures of the storage tests: a real S3-compatible server (moto's standalone server over HTTP, tests/s3server)
for the session, and per test a bucket of its own that settings.STORAGES points at, built from the environment
variables an operator sets (geo_ourcity.env.storages_config)."""
import uuid

import pytest

from geo_ourcity.env import storages_config
from tests import s3server


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    with s3server.s3_server(str(tmp_path_factory.mktemp("moto"))) as url:
        yield url


@pytest.fixture
def bucket(settings, s3_endpoint, tmp_path):
    """A fresh bucket holds the photos and the import files; this machine's folders get nothing but scratch."""
    name = f"ourcity-{uuid.uuid4().hex[:12]}"
    s3server.client(s3_endpoint).create_bucket(Bucket=name)
    settings.STORAGES = storages_config(s3server.storage_environ(s3_endpoint, name))
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.IMPORTS_DIR = str(tmp_path / "imports")
    return name


def local_files(root):
    """Files under a local folder, scratch space (tmp/) left out."""
    if not root.exists():
        return []
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0]
                  != "tmp")
