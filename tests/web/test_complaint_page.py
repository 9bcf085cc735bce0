"""A complaint's public page by tracking code: timeline, answer, and the resident's confirm / not fixed."""
from django.test import Client

from complaints.models import ComplaintEvent, State
from complaints.tracking import confirmation_key


def test_the_page_shows_where_it_went_and_its_public_history(client, report):
    complaint = report(email="secret@example.com", phone="+7 900 000-00-00", first_name="Иван")
    ComplaintEvent.objects.create(complaint=complaint, actor_label="t", kind=ComplaintEvent.Kind.STATE,
                                  reason="внутренняя заметка", public=False)
    html = client.get(f"/c/{complaint.tracking_code}/").content.decode()
    assert complaint.department.display_name in html
    assert complaint.decision.explanation_ru in html
    assert "secret@example.com" not in html and "900 000" not in html and "Иван" not in html
    assert "внутренняя заметка" not in html
    assert html.count('<li>') >= 2  # submitted, routed
    assert "Да, решена" not in html  # nothing to confirm before an answer


def test_a_code_typed_loosely_finds_the_page(client, report):
    complaint = report()
    loose = complaint.tracking_code.lower().replace("-", " ")
    response = client.get("/c/", {"code": loose})
    assert response.status_code == 302 and response.url == f"/c/{complaint.tracking_code}/"
    assert client.get(f"/c/{complaint.tracking_code.lower()}/").status_code == 302
    assert client.get("/c/AAAA-AAAA-AAAA/").status_code == 404
    assert client.get("/c/", {"code": "nonsense"}).status_code == 302  # back, with a message


def test_user_text_is_escaped(client, report):
    complaint = report(description='<script>alert("x")</script><img src=x onerror=alert(1)>')
    for url in (f"/c/{complaint.tracking_code}/", f"/map/complaints/{complaint.pk}/"):
        html = client.get(url).content.decode()
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html


def test_the_popup(client, answered):
    html = client.get(f"/map/complaints/{answered.pk}/").content.decode()
    assert "Мусор во дворе" in html and answered.department.display_name in html
    assert answered.decision.explanation_ru in html
    assert "Убрали мусор &lt;b&gt;сегодня&lt;/b&gt;" in html  # the official answer, escaped too
    assert answered.tracking_code not in html  # the code is the resident's key: never public
    assert "дан ответ" in html


def test_no_popup_for_hidden_or_unknown_complaints(client, report):
    complaint = report()
    complaint.state = State.HIDDEN
    complaint.save(update_fields=["state"])
    assert client.get(f"/map/complaints/{complaint.pk}/").status_code == 404
    assert client.get(f"/c/{complaint.tracking_code}/").status_code == 404
    assert client.get("/map/complaints/999999999/").status_code == 404


def test_the_resident_confirms_the_fix(client, answered):
    page = client.get(f"/c/{answered.tracking_code}/").content.decode()
    assert "Да, решена" in page and "Нет, не решена" in page
    response = client.post(f"/c/{answered.tracking_code}/confirm/", {"key": confirmation_key(answered)}, follow=True)
    answered.refresh_from_db()
    assert answered.state == State.RESOLVED
    assert "Спасибо" in response.content.decode()


def test_the_resident_says_it_is_not_fixed(client, answered):
    client.post(f"/c/{answered.tracking_code}/deny/",
                {"reason": "Мусор снова лежит", "key": confirmation_key(answered)})
    answered.refresh_from_db()
    assert answered.state == State.REOPENED and answered.reopen_count == 1
    assert "Мусор снова лежит" in client.get(f"/c/{answered.tracking_code}/").content.decode()


def test_confirming_twice_is_a_message_not_an_error(client, answered):
    key = {"key": confirmation_key(answered)}
    client.post(f"/c/{answered.tracking_code}/confirm/", key)
    response = client.post(f"/c/{answered.tracking_code}/confirm/", key, follow=True)
    assert response.status_code == 200 and "alert-danger" in response.content.decode()


def test_the_buttons_need_the_csrf_token(answered):
    client = Client(enforce_csrf_checks=True)
    assert client.post(f"/c/{answered.tracking_code}/confirm/", {"key": confirmation_key(answered)}).status_code == 403
    assert client.get(f"/c/{answered.tracking_code}/confirm/").status_code == 405
    answered.refresh_from_db()
    assert answered.state == State.ANSWERED


def test_photos_show_on_the_page_and_in_the_popup(client, report, settings, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from .conftest import png_bytes

    settings.MEDIA_ROOT = str(tmp_path)
    complaint = report(photos=[SimpleUploadedFile("p.png", png_bytes(), content_type="image/png")])
    photo = complaint.photos.get()
    for url in (f"/c/{complaint.tracking_code}/", f"/map/complaints/{complaint.pk}/"):
        assert f'src="/photos/{photo.pk}/"' in client.get(url).content.decode()
    assert client.get(f"/photos/{photo.pk}/")["Content-Type"] == "image/png"
