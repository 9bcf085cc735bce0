"""Messages name a question by its label in the reader's language, never by its internal code, and every input is
checked at once: all the faults come back together, each with the field it is about."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from complaints import services
from complaints.errors import ComplaintError, ComplaintInvalid
from complaints.models import Complaint
from complaints.photos import clean_photos
from complaints.validation import clean_attributes, clean_text
from routing.models import CategoryAttribute

from .factories import MOSCOW, image_bytes

VALUES = [{"key": "k1", "name_i18n": {"ru": "один", "en": "one"}}, {"key": "k2", "name_i18n": {"ru": "два", "en": "two"}}]
# code, datatype, label ru, label en, a bad answer (None: a required question left empty)
QUESTIONS = [
    ("spots", "number", "Сколько мест", "How many places", "many"),
    ("seen_at", "datetime", "Когда заметили", "When seen", "yesterday"),
    ("kind_x", "singlevaluelist", "Что сломано", "What is broken", "k9"),
    ("extras_x", "multivaluelist", "Что ещё", "What else", ["k1", "k9"]),
    ("note_x", "string", "Подъезд", "Entrance", "x" * 1001),
    ("details_x", "text", "Подробности", "Details", "a\x00b"),
    ("must_x", "string", "Номер дома", "House number", None),
]


@pytest.fixture
def asked(category):
    for order, (code, datatype, ru, en, _bad) in enumerate(QUESTIONS):
        CategoryAttribute.objects.create(category=category, code=code, datatype=datatype, required=code == "must_x",
                                         order=order, description_i18n={"ru": ru, "en": en},
                                         values=VALUES if datatype.endswith("list") else [])
    return category


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("code, datatype, ru, en, bad", QUESTIONS, ids=[q[0] for q in QUESTIONS])
def test_a_question_is_named_by_its_label_in_the_readers_language(asked, language, code, datatype, ru, en, bad):
    answers = {"must_x": "5", **({code: bad} if bad is not None else {"must_x": ""})}
    with translation.override(language):
        with pytest.raises(ComplaintError) as error:
            clean_attributes(asked, answers)
    message = str(error.value)
    assert (ru if language == "ru" else en) in message
    assert code not in message
    assert error.value.field == code


def test_every_question_is_checked_at_once(asked):
    answers = {code: bad for code, _dt, _ru, _en, bad in QUESTIONS if bad is not None}
    with pytest.raises(ComplaintInvalid) as error:
        clean_attributes(asked, answers)
    assert [e.field for e in error.value.errors] == [q[0] for q in QUESTIONS]
    assert all(en in str(e) for e, (_c, _d, _ru, en, _b) in zip(error.value.errors, QUESTIONS))


@pytest.mark.parametrize("language, label", [("ru", "Описание"), ("en", "Description")])
def test_text_fields_are_named_by_their_label(language, label):
    with translation.override(language), pytest.raises(ComplaintError) as error:
        clean_text("x" * 11, field="description", limit=10)
    assert label in str(error.value) and "description" not in str(error.value)


def photo(data, name):
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_complaint_create_reports_every_fault_together_and_stores_nothing(asked, media):
    before = Complaint.objects.count()
    with pytest.raises(ComplaintInvalid) as error:
        services.complaint_create(category=asked, point=MOSCOW, description="x\x07", email="not-an-address",
                                  attributes={"spots": "many"},
                                  photos=[photo(image_bytes("PNG"), "good.png"), photo(b"not an image", "bad.png")])
    fields = [e.field for e in error.value.errors]
    assert fields == ["description", "spots", "must_x", "email", "photo"]
    assert "bad.png" in str(error.value.errors[-1]) and "good.png" not in str(error.value.errors[-1])
    assert Complaint.objects.count() == before


def test_several_photos_are_each_checked_and_counted(settings, media):
    settings.PHOTO_MAX_PER_COMPLAINT = 3
    assert len(clean_photos([photo(image_bytes("PNG"), f"p{i}.png") for i in range(3)])) == 3
    with pytest.raises(ComplaintError, match="At most 3 photos"):
        clean_photos([photo(image_bytes("PNG"), f"p{i}.png") for i in range(4)])
    with pytest.raises(ComplaintInvalid) as error:
        clean_photos([photo(b"text", "a.png"), photo(image_bytes("PNG"), "b.png"), photo(b"", "c.png")])
    assert [str(e).split(":")[0] for e in error.value.errors] == ["Photo 1 (a.png)", "Photo 3 (c.png)"]
