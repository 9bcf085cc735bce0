"""The complaint admin: read-only pages with the history, and moderation through the service."""
from django.urls import reverse

from complaints import services
from complaints.models import ComplaintEvent, State


def test_pages_render_with_history(admin_client, make_complaint, staff):
    complaint = make_complaint()
    services.complaint_take(complaint=complaint, user=staff["a"])
    assert admin_client.get(reverse("admin:complaints_complaint_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:complaints_complaint_changelist"),
                            {"q": complaint.tracking_code}).status_code == 200
    page = admin_client.get(reverse("admin:complaints_complaint_change", args=[complaint.pk]))
    assert page.status_code == 200 and "in_progress" in page.content.decode()
    assert admin_client.get(reverse("admin:complaints_complaint_add")).status_code == 403


def test_hide_action_goes_through_the_service(admin_client, make_complaint):
    complaint, hidden = make_complaint(), make_complaint(state=State.HIDDEN)
    admin_client.post(reverse("admin:complaints_complaint_changelist"),
                      {"action": "hide", "_selected_action": [complaint.pk, hidden.pk]})
    complaint.refresh_from_db()
    assert complaint.state == State.HIDDEN
    (event,) = ComplaintEvent.objects.filter(complaint=complaint)
    assert event.kind == "hidden" and event.actor_label == "admin" and not event.public
    assert not ComplaintEvent.objects.filter(complaint=hidden).exists()
