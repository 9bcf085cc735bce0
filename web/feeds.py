"""Atom feeds, no login (django.contrib.syndication): a complaint's public history, and the new problems of a
district or a category group. Public data only: no contact data, no tracking code (items link to the public page
by number), free text through complaints.tracking.redact; the feed generator escapes everything, and characters
that XML can not hold are dropped."""
import re

from django.contrib.syndication.views import Feed
from django.http import Http404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _

from complaints.selectors import complaint_history, complaints_public
from complaints.tracking import redact
from facilities.models import AdminArea
from routing.models import in_group

from .labels import EVENT_LABELS, STATE_LABELS, localized

ITEMS = 50
# Characters XML 1.0 can not hold (control characters but tab, newline and carriage return; surrogates; U+FFFE/F).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def clean(text):
    return _NOT_XML.sub("", str(text or ""))


class _Feed(Feed):
    feed_type = Atom1Feed

    def item_link(self, item):
        return reverse("web:complaint-number", args=[item.pk])

    def item_pubdate(self, item):
        return item.submitted_at

    def item_updateddate(self, item):
        return item.updated_at

    def item_title(self, item):
        return clean(f"№ {item.pk}: {localized(item.category, 'name')} ({STATE_LABELS.get(item.state, item.state)})")

    def item_description(self, item):
        return clean(redact(item.description)[:1000])

    def item_guid(self, item):
        return f"complaint-{item.pk}"

    def _recent(self):
        return complaints_public().select_related("category").order_by("-submitted_at", "-pk")


class DistrictFeed(_Feed):
    def get_object(self, request, area_id):
        area = AdminArea.objects.filter(pk=area_id).first()
        if area is None:
            raise Http404("no such district")
        return area

    def title(self, area):
        return clean(_("New problems: %(area)s") % {"area": area.name})

    def link(self, area):
        return reverse("web:feed-district", args=[area.pk])

    def items(self, area):
        return self._recent().filter(area__in=AdminArea.objects.filter(pk=area.pk) |
                                     AdminArea.objects.filter(parent=area))[:ITEMS]


class GroupFeed(_Feed):
    def get_object(self, request, group):
        from .selectors import active_categories

        if len(group) > 100 or not group.isprintable() or not active_categories().filter(in_group(group)).exists():
            raise Http404("no such group")
        return group

    def title(self, group):
        return clean(_("New problems: %(group)s") % {"group": group})

    def link(self, group):
        return reverse("web:feed-group", args=[group])

    def items(self, group):
        return self._recent().filter(in_group(group, "category__"))[:ITEMS]


class ComplaintFeed(Feed):
    feed_type = Atom1Feed

    def get_object(self, request, pk):
        complaint = complaints_public().filter(pk=pk).first()
        if complaint is None:
            raise Http404("no such complaint")
        return complaint

    def title(self, complaint):
        return clean(f"№ {complaint.pk}: {localized(complaint.category, 'name')}")

    def link(self, complaint):
        return reverse("web:complaint-number", args=[complaint.pk])

    def items(self, complaint):
        return list(complaint_history(complaint, public_only=True).order_by("-at", "-id")[:ITEMS])

    def item_title(self, event):
        to = STATE_LABELS.get(event.to_state, "") if event.to_state else ""
        return clean(f"{EVENT_LABELS.get(event.kind, event.kind)}{' → ' + str(to) if to else ''}")

    def item_description(self, event):
        if event.kind == "routed" and event.decision_id:
            return clean(redact(localized(event.decision, "explanation")))
        return clean(redact(event.reason))

    def item_link(self, event):
        return reverse("web:complaint-number", args=[event.complaint_id])

    def item_guid(self, event):
        return f"event-{event.pk}"

    def item_pubdate(self, event):
        return event.at
