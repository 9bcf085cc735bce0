"""A facilities generation is searched once it has its own search index and its names' stems are in the vocabulary
(facilities.search.generation_make_searchable: just after the import's commit, by a rollback, and by the
scheduler's sweep for one a crash left behind). Before that its facilities are not found, and its table is not
scanned: the selector prunes it before it reads a row."""
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from facilities.models import Dataset, Generation, SearchTerm
from facilities.search import places_search
from facilities.tasks import search_sweep
from importers.core import run_import
from importers.generations import dataset_rollback
from tests.routing.test_reroute_around import lights, owners, spec, write  # noqa: F401

pytestmark = pytest.mark.django_db


def lamps_found(text="фонарь"):
    return [p.label for p in places_search(text, limit=50) if p.kind == "facility" and p.label.startswith("Фонарь")]


def table_index(table):
    """The table's GIN indexes on the search key (by definition: a renamed table's indexes keep their names)."""
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE '%%USING gin%%'", [table])
        return [re.sub(r"^CREATE INDEX \S+ ON \S+ ", "", r[0]) for r in cur.fetchall()]


KEY = "USING gin (facilities_search_key((((name)::text || ' '::text) || (address)::text)))"


@pytest.fixture
def lamps(tmp_path, spec, owners):  # noqa: F811
    a, _b = owners
    rows = {key: ("streetlight", a, p) for key, p in lights().items()}
    result = run_import(write(tmp_path, rows, "v1"), spec, commit=True)
    assert result.counts["created"] == 36
    return rows


def active(code="test-lights"):
    return Generation.objects.get(dataset__code=code, state="active")


def forget_search(generation):
    """As a crash between the import's commit and its next step leaves a generation."""
    with connection.cursor() as cur:
        cur.execute(f'DROP INDEX "{generation.table_name}_search"')
    Generation.objects.filter(pk=generation.pk).update(searchable=False)


def test_an_import_leaves_its_generation_indexed_in_the_vocabulary_and_found(lamps):
    generation = active()
    assert generation.searchable
    assert table_index(generation.table_name) == [KEY]
    assert len(lamps_found()) == 36
    assert SearchTerm.objects.filter(term="фонар").exists()  # the new word is in the vocabulary,
    assert len(lamps_found("фона")) == 36  # so a word being typed is completed to it


def test_a_generation_without_its_index_is_not_searched_and_its_table_not_scanned(lamps):
    generation = active()
    forget_search(generation)
    with CaptureQueriesContext(connection) as queries:
        assert lamps_found() == []
    searched = [q["sql"] for q in queries if "facilities_facility f" in q["sql"]]
    assert searched
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")  # a scan of the unindexed table would otherwise be cheap here
        cur.execute("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + searched[0])
        plan = "\n".join(r[0] for r in cur.fetchall())
    lines = [line for line in plan.splitlines() if generation.table_name in line]
    assert all("never executed" in line for line in lines), plan  # pruned at run time, if planned at all
    # the other generations are searched through their indexes
    assert "Bitmap Index Scan on facilities_facility_d" in plan and "Seq Scan on facilities_facility_d" not in plan, plan


def test_the_sweep_makes_a_generation_a_crash_left_behind_searchable(lamps):
    generation = active()
    forget_search(generation)
    assert search_sweep() == 1
    assert Generation.objects.get(pk=generation.pk).searchable
    assert table_index(generation.table_name) == [KEY]
    assert len(lamps_found()) == 36
    assert search_sweep() == 0  # once


def test_the_next_generation_and_a_rollback_stay_searchable(lamps, tmp_path, spec):  # noqa: F811
    first = active()
    moved = {key: (typ, owner, (lon + 0.0003, lat)) for key, (typ, owner, (lon, lat)) in lamps.items()}
    assert run_import(write(tmp_path, moved, "v2"), spec, commit=True).counts["updated"] == 36
    second = active()
    assert second.pk != first.pk and second.searchable and len(lamps_found()) == 36
    assert Dataset.objects.get(code="test-lights").partition_table == second.table_name
    dataset_rollback(dataset_code="test-lights", actor="tester", commit=True)
    back = active()  # the rollback's own generation, a copy of the first
    assert back.searchable and len(lamps_found()) == 36
    assert table_index(back.table_name) == [KEY]


def test_a_generation_no_longer_active_is_never_made_searchable(lamps):
    from facilities.search import generation_make_searchable

    generation = active()
    forget_search(generation)
    Generation.objects.filter(pk=generation.pk).update(state="previous")
    assert generation_make_searchable(generation.pk) is False
    assert table_index(generation.table_name) == []


@pytest.fixture
def vocabulary_writers():
    """The backends that write the vocabulary (a statement trigger on it records pg_backend_pid()); `refuse(True)`
    makes every write of it fail. Committed DDL (the test is transactional): dropped at the end."""
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE t_vocabulary_writers (pid int)")
        cur.execute("CREATE TABLE t_vocabulary_refused (yes boolean)")
        cur.execute("""CREATE FUNCTION t_vocabulary_writer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                           IF EXISTS (SELECT FROM t_vocabulary_refused) THEN RAISE EXCEPTION 'vocabulary refused'; END IF;
                           INSERT INTO t_vocabulary_writers VALUES (pg_backend_pid()); RETURN NULL; END $$""")
        cur.execute("CREATE TRIGGER t_vocabulary_writer AFTER INSERT ON facilities_searchterm "
                    "FOR EACH STATEMENT EXECUTE FUNCTION t_vocabulary_writer()")

    def writers():
        with connection.cursor() as cur:
            cur.execute("SELECT DISTINCT pid FROM t_vocabulary_writers")
            return {r[0] for r in cur.fetchall()}

    def refuse(yes):
        with connection.cursor() as cur:
            cur.execute("DELETE FROM t_vocabulary_refused")
            if yes:
                cur.execute("INSERT INTO t_vocabulary_refused VALUES (true)")

    writers.refuse = refuse
    yield writers
    with connection.cursor() as cur:
        cur.execute("DROP TRIGGER t_vocabulary_writer ON facilities_searchterm")
        cur.execute("DROP FUNCTION t_vocabulary_writer()")
        cur.execute("DROP TABLE t_vocabulary_writers, t_vocabulary_refused")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_vocabulary_is_counted_on_another_connection_and_both_must_succeed(
        demo_city, tmp_path, spec, owners, vocabulary_writers):  # noqa: F811
    from facilities.search import generation_make_searchable

    a, _b = owners
    assert run_import(write(tmp_path, {k: ("streetlight", a, p) for k, p in lights().items()}, "v1"), spec,
                      commit=True).counts["created"] == 36
    generation = active()
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        me = cur.fetchone()[0]
    assert vocabulary_writers() and me not in vocabulary_writers()  # the import's step: another backend wrote it

    # The vocabulary's connection fails: the index built meanwhile is rolled back, the generation stays unsearched.
    forget_search(generation)
    SearchTerm.objects.filter(term="фонар").delete()
    vocabulary_writers.refuse(True)
    with pytest.raises(Exception, match="vocabulary refused"):
        generation_make_searchable(generation.pk)
    assert not Generation.objects.get(pk=generation.pk).searchable
    assert table_index(generation.table_name) == [] and lamps_found() == []
    assert not SearchTerm.objects.filter(term="фонар").exists()

    vocabulary_writers.refuse(False)  # the next try (the sweep's) makes it searchable
    assert search_sweep() == 1
    assert Generation.objects.get(pk=generation.pk).searchable
    assert table_index(generation.table_name) == [KEY] and len(lamps_found()) == 36
    assert SearchTerm.objects.filter(term="фонар").exists()


def test_inside_a_transaction_the_vocabulary_is_counted_on_the_same_connection(lamps):
    # (a test's transaction: another connection would not see the generation's rows)
    from facilities.search import generation_make_searchable

    generation = active()
    forget_search(generation)
    SearchTerm.objects.filter(term="фонар").delete()
    assert generation_make_searchable(generation.pk) is True
    assert SearchTerm.objects.filter(term="фонар").exists() and len(lamps_found()) == 36
