"""Finding the place and not reporting twice, in the browser: a report made by address and keyboard alone (no map
click); the open complaints of the same group near the point offered before filing, each with "this is it: follow
it instead"; the search box on the map centres it, and the complaints near the place are a list beside the map."""
from playwright.sync_api import expect

from complaints.models import Complaint
from complaints.services import complaint_create
from facilities.models import Address
from routing.models import Category

from .steps import fill_required_attributes, next_step, open_map

LABEL = "Нижегородская улица, дом 3"  # data/moscow/address_register_sample.json


def keyboard_next(page):
    """The shown step's Next button, by keyboard."""
    button = page.locator("#report-form .step:not([hidden]) [data-next]")
    expect(button).to_be_enabled()
    button.focus()
    page.keyboard.press("Enter")


def search(page, box, typed):
    page.locator(box).press_sequentially(typed, delay=20)
    expect(page.locator(box + '[aria-expanded="true"]')).to_be_visible()


def test_a_report_by_address_and_keyboard_alone(demo_city, page, shots):
    address = Address.objects.get(label=LABEL)
    open_map(page)
    page.focus("#report-start")
    page.keyboard.press("Enter")
    expect(page.locator("#report-place-q")).to_be_focused()  # straight to the address
    search(page, "#report-place-q", "нижгородская 3")  # with a typo
    options = page.locator("#report-place-results [role=option]")
    expect(options.first).to_contain_text(LABEL)
    shots("found")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowUp")
    expect(options.first).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator("#report-form")).to_be_visible()
    expect(page.locator("#report-place-status")).to_contain_text(LABEL)
    assert abs(float(page.locator("#id_lat").input_value()) - address.geom.y) < 1e-6
    assert abs(float(page.locator("#id_lon").input_value()) - address.geom.x) < 1e-6
    expect(page.locator("#id_category option[value=yard-rubbish]")).to_have_count(1)
    keyboard_next(page)  # the report's steps: what the problem is
    page.locator("#id_description").focus()
    page.keyboard.type("Мусор у входа в здание")
    page.locator("#id_category").focus()
    page.keyboard.type("Мусор")  # a select takes typed letters
    page.locator("#id_category").select_option("yard-rubbish")
    keyboard_next(page)  # details and photos
    fill_required_attributes(page)
    keyboard_next(page)  # contact
    page.locator("#report-submit").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#report-result")).to_be_visible()
    shots("sent")
    complaint = Complaint.objects.order_by("-id").first()
    assert complaint.category.code == "yard-rubbish"
    assert complaint.location.distance(address.geom) < 1e-6


def test_the_same_problem_nearby_is_offered_to_follow_instead(demo_city, page, shots):
    address = Address.objects.get(label=LABEL)
    first = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=(address.geom.x,
                             address.geom.y + 0.0003), description="Переполнены мусорные баки у входа")
    open_map(page)
    page.click("#report-start")
    search(page, "#report-place-q", "нижегородская 3")
    page.keyboard.press("Enter")
    expect(page.locator("#report-form")).to_be_visible()
    next_step(page)  # the nearby list sits under the category, in the report's second step
    nearby = page.locator("#report .nearby")
    expect(nearby).to_be_hidden()  # the group comes with the category
    page.select_option("#id_category", "yard-lighting")  # the same group as the one nearby
    expect(nearby).to_be_visible()
    item = nearby.locator(".nearby-item")
    expect(item).to_have_count(1)
    expect(item).to_contain_text(f"№ {first.pk}")
    expect(item).to_contain_text("в 33 м")
    follow = item.locator(".nearby-follow")
    expect(follow).to_have_text("Это оно: следить за ним вместо новой жалобы")
    href = follow.get_attribute("href")
    assert href.endswith("#follow") and f"/{first.pk}/" in href and first.tracking_code not in href
    shots("nearby")
    # a category of another group: nothing nearby of that kind
    # (one about no kind of facility: those are offered everywhere, the others only near such a facility)
    other = (Category.objects.exclude(group_i18n__ru="Дворы")
             .filter(active=True, attributes__isnull=True, facility_types__isnull=True).order_by("code").first())
    page.select_option("#id_category", other.code)
    expect(nearby.locator(".nearby-status")).to_have_text(
        "В 250 м нет открытых жалоб такого рода: ваша будет первой.")
    expect(item).to_have_count(0)


def test_the_map_search_centres_the_map_and_lists_the_complaints_near(demo_city, page, shots):
    address = Address.objects.get(label=LABEL)
    near = complaint_create(category=Category.objects.get(code="yard-rubbish"),
                            point=(address.geom.x + 0.0005, address.geom.y), description="Мусор во дворе")
    open_map(page)
    list_box = page.locator("#browse .nearby")
    expect(list_box.locator(".nearby-status")).to_have_text(
        "Приблизьте карту или найдите место, чтобы увидеть список жалоб рядом.")
    page.focus("#map-place-q")
    search(page, "#map-place-q", "на Нижегородской улице 3")
    page.keyboard.press("Enter")
    page.wait_for_function("""([lat, lon]) => {
        const c = window.OurCity.map.getCenter();
        return Math.abs(c.lat - lat) < 1e-4 && Math.abs(c.lng - lon) < 1e-4 && window.OurCity.map.getZoom() >= 17;
    }""", arg=[address.geom.y, address.geom.x])
    link = list_box.locator(".nearby-item a").first
    expect(link).to_contain_text(f"№ {near.pk}")
    expect(list_box).to_have_attribute("aria-labelledby", "map-nearby-title")
    expect(page.locator("#map-nearby-title")).to_have_text("Открытые жалобы рядом")
    link.focus()
    expect(link).to_be_focused()  # reachable by keyboard
    focused = "() => document.activeElement.matches('#browse .nearby-item a') && document.activeElement.closest('li').dataset.id"
    held = page.evaluate(focused)
    assert held
    # the map moves a little: the list is drawn again with the new distances, and the keyboard user keeps their place
    drawn = page.evaluate("() => document.querySelector('#browse .nearby-list').dataset.drawn")
    page.evaluate("() => window.OurCity.map.panBy([40, 0], {animate: false})")
    page.wait_for_function("(before) => document.querySelector('#browse .nearby-list').dataset.drawn !== before",
                           arg=drawn)
    assert page.evaluate(focused) == held
    shots("listed")
    # a district: the map fits it
    page.fill("#map-place-q", "")
    search(page, "#map-place-q", "Тверской район")
    expect(page.locator("#map-place-results [role=option]").first).to_contain_text("Тверской")
    page.keyboard.press("Enter")
    page.wait_for_function("() => window.OurCity.map.getZoom() <= 15")
