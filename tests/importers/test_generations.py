"""A facilities dataset's generations are rows: `manage.py generations DATASET` lists them, and `--rollback`
makes the previous one active again (atomically, re-routing what that moves, recorded as an import run)."""
import pytest
from django.core.management import CommandError, call_command

from complaints.models import Complaint
from facilities.models import Dataset, Facility, Generation
from importers.core import run_import
from importers.errors import ImportFailure
from importers.generations import dataset_rollback
from importers.models import ImportRun
from tests.routing.test_reroute_around import (assert_a_full_redecision_agrees, complaints_in_grid, lights, owners,  # noqa: F401
                                               spec, write)

pytestmark = pytest.mark.django_db


def registry():
    return sorted(Facility.objects.filter(dataset__code="test-lights").values_list(
        "id", "source_key", "owner__code", "type__code", "name", "valid_to"))


def states():
    return list(Generation.objects.filter(dataset__code="test-lights").order_by("id").values_list("state", flat=True))


@pytest.fixture
def two_generations(tmp_path, spec, owners):  # noqa: F811
    a, b = owners
    grid = lights()
    rows = {key: ("streetlight", a if n % 2 else b, p) for n, (key, p) in enumerate(sorted(grid.items()))}
    assert run_import(write(tmp_path, rows, "v1"), spec, commit=True).counts["created"] == 36
    first = registry()
    complaints_in_grid(40)
    keys = sorted(grid)
    for key in keys[0:4]:  # four lights move about 30 m, two go, one comes, two change hands
        typ, owner, (lon, lat) = rows[key]
        rows[key] = (typ, owner, (lon + 0.0004, lat + 0.0001))
    for key in keys[4:6]:
        del rows[key]
    rows["N1"] = ("streetlight", a, (grid[keys[8]][0] + 0.00005, grid[keys[8]][1]))
    for key in keys[10:12]:
        typ, owner, p = rows[key]
        rows[key] = (typ, b if owner == a else a, p)
    second = run_import(write(tmp_path, rows, "v2"), spec, commit=True)
    assert (second.counts["created"], second.counts["updated"], second.counts["retired"]) == (1, 6, 2)
    return first, second


def test_each_commit_that_changes_a_dataset_is_a_generation_row_listed_by_the_command(two_generations, capsys):
    first, second = two_generations
    gens = list(Generation.objects.filter(dataset__code="test-lights").order_by("id"))
    assert [g.state for g in gens] == ["previous", "active"]
    assert gens[1].run_id == second.run.pk and gens[1].actor == second.run.actor
    assert (gens[1].counts["created"], gens[1].counts["updated"], gens[1].counts["retired"]) == (1, 6, 2)
    assert (gens[1].counts["rows"], gens[1].counts["active"]) == (37, 35)
    assert gens[1].table_name == Dataset.objects.get(code="test-lights").partition_table
    call_command("generations", "test-lights")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["id", "created", "state"]
    assert [line.split()[0] for line in out[1:]] == [str(gens[1].pk), str(gens[0].pk)]
    assert "active" in out[1] and f"#{second.run.pk}" in out[1] and "previous" in out[2]


def test_a_rollback_restores_the_previous_generation_reroutes_and_is_recorded(two_generations):
    first, second = two_generations
    after_second = registry()
    departments = dict(Complaint.objects.values_list("pk", "department_id"))
    dry = dataset_rollback(dataset_code="test-lights", actor="tester")
    assert registry() == after_second and states() == ["previous", "active"]  # a dry run changes nothing
    assert dry.run.status == ImportRun.Status.DRY_RUN

    done = dataset_rollback(dataset_code="test-lights", actor="tester", commit=True)
    c = done.counts
    assert (c["created"], c["updated"], c["retired"]) == (2, 6, 1)  # 2 come back, 6 as they were, N1 retired
    restored = registry()
    # Every facility of the first generation is back as it was; the one only the undone generation had is kept,
    # retired, so that complaints pointing at it stay explained.
    assert [r for r in restored if r[1] != "N1"] == first
    (n1,) = [r for r in restored if r[1] == "N1"]
    assert n1[5] is not None
    assert states() == ["active", "undone"]
    run = ImportRun.objects.get(pk=done.run.pk)
    assert (run.status, run.commit, run.actor, run.dataset.code) == ("committed", True, "tester", "test-lights")
    assert run.counts["rolled_back_to"] == Generation.objects.get(dataset__code="test-lights", state="active").pk
    assert done.reroute is not None and done.reroute.moved == c["rerouted"] > 0
    assert sum(d != departments[pk] for pk, d in Complaint.objects.values_list("pk", "department_id")) == \
        done.reroute.moved
    assert_a_full_redecision_agrees()  # the targeted re-route moved exactly what a full pass would


def test_a_rollback_refuses_clearly_when_there_is_no_previous_generation(two_generations, tmp_path, spec):  # noqa: F811
    dataset_rollback(dataset_code="test-lights", actor="tester", commit=True)
    before = registry(), states()
    with pytest.raises(ImportFailure, match="no previous generation to roll back to"):
        dataset_rollback(dataset_code="test-lights", actor="tester", commit=True)
    assert (registry(), states()) == before
    assert ImportRun.objects.latest("pk").status == "failed"


@pytest.mark.parametrize("args, message", [
    (["no-such-dataset"], "no dataset 'no-such-dataset'"),
    (["moscow-okrugs"], "only facilities datasets have generations"),
    (["moscow-okrugs", "--rollback", "--commit"], "only facilities datasets have generations"),
    (["test-lights", "--commit"], "--commit goes with --rollback"),
])
def test_the_command_fails_with_one_clear_line(two_generations, args, message):
    with pytest.raises(CommandError) as err:
        call_command("generations", *args)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_new_dataset_that_has_no_earlier_generation_can_not_be_rolled_back(tmp_path, spec, owners):  # noqa: F811
    a, _ = owners
    run_import(write(tmp_path, {"L1": ("streetlight", a, (37.62, 55.754))}, "v1"), spec, commit=True)
    assert states() == ["active"]
    with pytest.raises(CommandError, match="no previous generation"):
        call_command("generations", "test-lights", "--rollback", "--commit")


def test_the_migration_makes_each_existing_partition_its_datasets_active_generation():
    """facilities 0005 moves the data forward: a facilities dataset with a partition gets one active generation."""
    import importlib
    from types import SimpleNamespace

    from django.apps import apps
    from django.db import connection

    migration = importlib.import_module("facilities.migrations.0005_dataset_generations")
    dataset = Dataset.objects.get(code="moscow-education-buildings")
    rows = Facility.objects.filter(dataset=dataset).count()
    live = Facility.objects.active().filter(dataset=dataset).count()
    Generation.objects.all().delete()  # as before the migration
    migration.existing_partitions(apps, SimpleNamespace(connection=connection))
    (gen,) = Generation.objects.filter(dataset=dataset)
    assert (gen.state, gen.table_name, gen.counts) == ("active", dataset.partition_table, {"rows": rows, "active": live})
    facility_datasets = Dataset.objects.filter(target="facilities").exclude(partition_table="")
    assert Generation.objects.filter(state="active").count() == facility_datasets.count() > 1
