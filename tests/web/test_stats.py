"""Public statistics: counts by state, district and department, answers on time, median time to answer."""
from datetime import timedelta

from complaints.models import Complaint, State
from web.selectors import complaint_stats, statistics_refresh

from .conftest import TVERSKAYA


def test_figures(report):
    made = [report(point=(TVERSKAYA[0] + i * 1e-4, TVERSKAYA[1])) for i in range(5)]
    now = made[0].submitted_at
    # Two answered: one in 2 hours (on time), one after the deadline; one hidden (not counted).
    Complaint.objects.filter(pk=made[0].pk).update(state=State.ANSWERED, answered_at=now + timedelta(hours=2))
    Complaint.objects.filter(pk=made[1].pk).update(state=State.ANSWERED, answered_at=made[1].deadline + timedelta(days=1),
                                                   submitted_at=now)
    Complaint.objects.filter(pk=made[2].pk).update(state=State.HIDDEN)
    statistics_refresh()  # the scheduler's task (web.tasks.statistics_refresh)
    s = complaint_stats()
    assert s["total"] == 4
    assert s["by_state"] == {State.ANSWERED: 2, State.ASSIGNED: 2}
    assert s["by_district"] == [(made[0].area.name, 4)]
    assert s["by_department"] == [(made[0].department.display_name, 4)]
    assert (s["answered"], s["answered_on_time"]) == (2, 1)
    late = (made[1].deadline + timedelta(days=1) - now).total_seconds()
    assert abs(s["median_answer_seconds"] - (2 * 3600 + late) / 2) < 1


def test_the_page_draws_charts(client, report):
    report()
    html = client.get("/stats/").content.decode()
    assert "<svg" in html and "По районам" in html and "Тверской" in html
    assert "http" not in html.split("<body", 1)[1].replace('http-equiv', '')  # nothing from elsewhere


def test_the_page_with_no_complaints(client, db):
    assert client.get("/stats/").status_code == 200


def test_the_page_reads_the_schedulers_figures_not_its_own_pass(client, report):
    """The expensive figures are the last snapshot's: a complaint answered since shows once the scheduler has
    run; the counts by state (kept by triggers) are live."""
    made = report()
    statistics_refresh()
    Complaint.objects.filter(pk=made.pk).update(state=State.ANSWERED, answered_at=made.submitted_at)
    s = client.get("/stats/").context["s"]
    assert s["answered"] == 0 and s["by_state"] == {State.ANSWERED: 1} and s["computed_at"] is not None
    statistics_refresh()
    assert client.get("/stats/").context["s"]["answered"] == 1
