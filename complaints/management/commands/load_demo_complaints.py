"""A year of plausible history for the demo city, so that `make demo` shows a living map and its statistics, the
learned category suggestion and the forwarding rates have something true to show. Never run by the tests' city
(tests/complaints/test_demo_history.py runs it on its own, small).

Everything goes through the complaint services (complaints.services: the state machine, who may act, deadlines in
working days; each complaint filed by complaint_create, the rest of its life written with its batch's, BATCH at a
time, in one transaction: complaints.services.complaints_batch), at back-dated times (complaints.clock.at, the services' one narrow way to write history at another
time): complaints are filed over the last --days days, in the categories' seasons and at daytime hours, with texts
that fit their categories (data/moscow/demo_history.yaml), taken into work, answered on time or late, handed on with
a reason, confirmed or disputed by their residents (a dispute reopens them; they are answered again). What would
happen after now does not happen: the last weeks' complaints are open, some overdue. Every demo staff login
(staff.demo) gets tickets of its own. The same --seed gives the same history (categories, places, texts and times
relative to the moment it runs). Nothing happens when complaints already exist.
"""
import datetime
import multiprocessing
import os
import random
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections
from django.utils import timezone

from complaints import clock, services
from complaints.errors import ComplaintError
from complaints.models import Complaint
from complaints.tracking import confirmation_key
from facilities.models import AdminArea, Authority, Department, Facility
from routing.models import Category, RoutingAssignment

_HISTORY = None  # the History the forked processes share (History.run)


def _run_part(items):
    return _HISTORY.run_part(items)


HISTORY_FILE = Path(settings.BASE_DIR) / "data" / "moscow" / "demo_history.yaml"
HOUR = datetime.timedelta(hours=1)
DAY = datetime.timedelta(days=1)
# Shares of the history (the rest is drawn by category share and season).
P_IGNORED = 0.03  # never taken into work: overdue if old enough
P_HANDON = 0.09  # of categories that name where they are handed on
P_LATE = 0.15  # answered after the deadline
P_CONFIRM, P_DENY = 0.58, 0.12  # the resident's reaction to an answer (the rest: none)
P_DEMO_LOGIN = 0.05  # of complaints placed where each demo department login works
BATCH = 200  # complaints whose lives are written in one transaction (complaints.services.complaints_batch)
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 9, 9, 9, 9, 8, 8, 8, 9, 10, 10, 9, 7, 4, 2]


def answers(category, at):
    """Plausible answers to a category's required questions (the first choice of each list)."""
    out = {}
    for attribute in category.attributes.all():
        if not (attribute.required and attribute.variable):
            continue
        first = str(attribute.values[0]["key"]) if attribute.values else ""
        out[attribute.code] = {"singlevaluelist": first, "multivaluelist": [first], "number": "1",
                               "datetime": at.isoformat()}.get(attribute.datatype, "—")
    return out


class Command(BaseCommand):
    help = "Create a year of demo complaints through the services (when there are none)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=20261123)
        parser.add_argument("--count", type=int, default=2400, help="complaints to file (default 2400)")
        parser.add_argument("--days", type=int, default=365, help="how far back the history starts")
        parser.add_argument("--file", default=str(HISTORY_FILE), help="the texts and hand-ons (YAML)")
        parser.add_argument("--jobs", type=int, default=2 * (os.cpu_count() or 1),
                            help="processes that file at once (default: two per core; each waits on the "
                                 "database about half the time)")

    def handle(self, *args, **options):
        if options["count"] < 1 or not 1 <= options["days"] <= 3660:
            raise CommandError("--count must be positive and --days between 1 and 3660")
        if not Path(options["file"]).is_file():
            raise CommandError(f"demo history: no file {options['file']}")
        if Complaint.objects.exists():
            self.stdout.write("demo complaints: already there")
            return
        import yaml

        try:
            plan = yaml.safe_load(Path(options["file"]).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CommandError(f"demo history: can not read {options['file']}: {exc}") from None
        started = time.monotonic()
        history = History(plan, seed=options["seed"], days=options["days"], now=timezone.now(), out=self.stderr)
        made = history.run(options["count"], jobs=max(1, min(options["jobs"], 16)))
        self.stdout.write(f"demo complaints: {made} created over {options['days']} days in "
                          f"{time.monotonic() - started:.1f} s ({history.summary()})")


class History:
    def __init__(self, plan, *, seed, days, now, out):
        self.plan, self.rng, self.now, self.out = plan, random.Random(seed), now, out
        self.start = now - datetime.timedelta(days=days)
        self.seed = seed
        self.stats = {"answered": 0, "late": 0, "handed on": 0, "confirmed": 0, "disputed": 0, "open": 0}
        self.categories = {c.code: c for c in Category.objects.filter(active=True).prefetch_related(
            "attributes", "facility_types")}
        self.specs = {code: spec for code, spec in (plan.get("categories") or {}).items() if code in self.categories}
        if not self.specs:
            raise CommandError("demo history: none of its categories is in the catalogue")
        self.main_departments = dict(Department.objects.filter(code="main").values_list("authority_id", "id"))
        self.users = self._users()
        self.district_points = self._district_points()
        self.districts = sorted(self.district_points)
        self.facilities = self._facilities()
        self.login_places = self._login_places()
        self.misfiled = self._misfiled()
        self.assignments = {(a, c): d for a, c, d in RoutingAssignment.objects.values_list(
            "authority_id", "category_id", "department_id")}
        self.departments = {d.pk: d for d in Department.objects.select_related("authority")}
        self.by_code = dict(Authority.objects.values_list("code", "id"))
        self.area_parents = dict(AdminArea.objects.values_list("id", "parent__authority_id"))
        self.area_authorities = dict(AdminArea.objects.values_list("id", "authority_id"))

    # --- what the city holds ----------------------------------------------------------------------------------

    def _users(self):
        """The login that acts for each department: a demo department login where one works it, else the
        dispatcher (who works every department)."""
        User = get_user_model()
        dispatcher = User.objects.filter(username="dispatcher").first()
        if dispatcher is None:
            raise CommandError("demo history: the demo logins are missing (run manage.py load_demo first)")
        by_department = {}
        for user in User.objects.filter(departments__isnull=False).distinct().order_by("username"):
            for pk in user.departments.values_list("pk", flat=True):
                by_department.setdefault(pk, user)
        self.dispatcher = dispatcher
        return by_department

    def _district_points(self, per_district=40):
        """Points inside each district (PostGIS' ST_GeneratePoints with the seed: the same points every time)."""
        with connection.cursor() as cur:
            cur.execute("""SELECT a.id, ST_X(p.geom), ST_Y(p.geom)
                           FROM facilities_adminarea a,
                                LATERAL ST_Dump(ST_GeneratePoints(a.geom, %s, %s)) p
                           WHERE a.level = 'district' AND a.valid_to IS NULL ORDER BY a.okato, a.id, p.path""",
                        [per_district, self.seed])
            out = {}
            for area, x, y in cur.fetchall():
                out.setdefault(area, []).append((x, y))
        if not out:
            raise CommandError("demo history: no districts (run manage.py load_demo first)")
        return out

    def _facilities(self):
        """type code -> [(facility id, owner id, (lon, lat))] of the active facilities, a point on each."""
        out = {}
        with connection.cursor() as cur:
            cur.execute("""SELECT t.code, f.id, f.owner_id, ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom))
                           FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
                           WHERE f.valid_to IS NULL ORDER BY t.code, f.dataset_id, f.source_key""")
            for code, pk, owner, x, y in cur.fetchall():
                out.setdefault(code, []).append((pk, owner, (x, y)))
        return out

    def _login_places(self):
        """For each demo department login: [(category codes, points)] where its own tickets come from."""
        places = []
        for user in sorted(set(self.users.values()), key=lambda u: u.username):
            authorities = set(user.departments.values_list("authority_id", flat=True))
            owned = [(codes, p) for codes, p in self._owned_points(authorities)]
            areas = [a for a, auth in AdminArea.objects.filter(level="district").values_list("id", "authority_id")
                     if auth in authorities and a in self.district_points]
            if areas:
                owned.append(([c for c, s in self.specs.items() if self.categories[c].rule == "area"
                               and self.categories[c].area_level_id == "district"],
                              [p for a in areas for p in self.district_points[a]]))
            owned = [(codes, points) for codes, points in owned if codes and points]
            if owned:
                places.append(owned)
        return places

    def _owned_points(self, authorities):
        for type_code, rows in sorted(self.facilities.items()):
            points = [p for _pk, owner, p in rows if owner in authorities]
            codes = [c for c in self.specs if self.categories[c].rule == "facility"
                     and type_code in {t.code for t in self.categories[c].facility_types.all()}]
            if points:
                yield codes, points

    def _misfiled(self):
        """School buildings the registry gives to one school that belong to the nearest school building's owner
        (another school within 1.5 km): [(point, the department their complaints are handed on to)]."""
        n = int(self.plan.get("misfiled_buildings") or 0)
        if not n or "school-territory" not in self.specs:
            return []
        with connection.cursor() as cur:
            cur.execute("""SELECT f.id FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
                           WHERE t.code = 'school' AND f.valid_to IS NULL AND f.owner_id IS NOT NULL
                             AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
                           ORDER BY f.dataset_id, f.source_key""")
            ids = [r[0] for r in cur.fetchall()]
            candidates = self.rng.sample(ids, min(len(ids), 10 * n))
            cur.execute("""SELECT ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom)), n.owner_id
                           FROM unnest(%s::bigint[]) WITH ORDINALITY AS c(id, no)
                           JOIN facilities_facility f ON f.id = c.id
                           CROSS JOIN LATERAL (
                               SELECT g.owner_id, g.geom FROM facilities_facility g
                               WHERE g.type_id = f.type_id AND g.valid_to IS NULL AND g.owner_id <> f.owner_id
                               ORDER BY g.geom <-> f.geom LIMIT 1) n
                           WHERE ST_DWithin(f.geom::geography, n.geom::geography, 1500)
                           ORDER BY c.no""", [candidates])
            picked = cur.fetchall()[:n]
        return [((x, y), self.main_departments.get(owner)) for x, y, owner in picked
                if self.main_departments.get(owner)]

    # --- drawing ------------------------------------------------------------------------------------------------

    def _moment(self, day_weights):
        day = self.rng.choices(range(len(day_weights)), weights=day_weights)[0]
        hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
        at = (self.start + day * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
        at = timezone.localtime(at).replace(hour=hour) + datetime.timedelta(minutes=self.rng.randrange(60),
                                                                             seconds=self.rng.randrange(60))
        return min(max(at, self.start), self.now - datetime.timedelta(minutes=5))

    def _text(self, spec):
        p, rng = self.plan, self.rng
        parts = [rng.choice(p["openers"]) + rng.choice(spec["problems"])]
        place, duration = rng.choice(p["places"]), rng.choice(p["durations"])
        sentence = " ".join(x for x in (parts[0], place, duration) if x) + "."
        request = rng.choice(p["requests"])
        return f"{sentence} {request}".strip()

    def _point(self, category):
        types = {t.code for t in category.facility_types.all()} if category.rule == "facility" else set()
        rows = [r for t in sorted(types) for r in self.facilities.get(t, [])]
        if rows:
            return self.rng.choice(rows)[2]
        return self.rng.choice(self.district_points[self.rng.choice(self.districts)])

    def draw(self, count):
        """The history's complaints, drawn from the seed: [(index, category code, point, filed at, hand-on)], in
        the order they are filed (so that their numbers grow with time)."""
        days = max((self.now - self.start).days, 1)
        codes = sorted(self.specs)
        weights_by_day = {}
        for code in codes:
            spec = self.specs[code]
            season = set(spec.get("season") or ())
            weights_by_day[code] = [float(spec.get("share", 1)) * (3 if (self.start + d * DAY).month in season else 1)
                                    for d in range(days)]
        category_weights = [sum(weights_by_day[c]) for c in codes]
        items = []
        for _ in range(count):
            code = self.rng.choices(codes, weights=category_weights)[0]
            point = self._point(self.categories[code])
            if self.login_places and self.rng.random() < P_DEMO_LOGIN * len(self.login_places):
                codes_here, points = self.rng.choice(self.rng.choice(self.login_places))
                code, point = self.rng.choice(codes_here), self.rng.choice(points)
            items.append((code, point, self._moment(weights_by_day[code]), None))
        for point, department in self.misfiled:  # the planted registry errors: handed on within the last 80 days
            for _ in range(self.rng.randint(4, 6)):
                at = self.now - datetime.timedelta(days=self.rng.uniform(5, 80))
                items.append((self.rng.choice(["school-territory", "school-building"]), point, at,
                              (department, self.plan["misfiled_reason"])))
        items.sort(key=lambda item: item[2])
        return [(i, *item) for i, item in enumerate(items)]

    def run(self, count, jobs=1):
        """File and live the drawn complaints, in `jobs` processes (each with its own database connection; each
        complaint's life drawn from its own seed, so the history does not depend on how they are shared)."""
        items = self.draw(count)
        parts = [items[j::jobs] for j in range(jobs)]
        if jobs == 1:
            made, stats = self.run_part(parts[0])
        else:
            global _HISTORY
            _HISTORY = self
            connections.close_all()  # each process opens its own
            with multiprocessing.get_context("fork").Pool(jobs) as pool:
                results = pool.map(_run_part, parts)
            made = sum(m for m, _ in results)
            stats = {k: sum(s[k] for _, s in results) for k in self.stats}
        self.stats = stats
        return made

    def run_part(self, items):
        with connection.cursor() as cur:  # demo data: a crash may lose the last few ms of it, never its consistency
            cur.execute("SET synchronous_commit TO off")
        made = 0
        for start in range(0, len(items), BATCH):
            # Each complaint is filed at once (complaint_create); the rest of its life, through the same services,
            # is written with its batch's in one transaction (complaints.services.complaints_batch).
            with services.complaints_batch() as batch:
                for index, code, point, at, handon in items[start:start + BATCH]:
                    self.rng = random.Random(f"{self.seed}:{index}")
                    made += self._complaint(self.categories[code], point, at, self.specs[code], handon=handon,
                                            batch=batch)
        return made, self.stats

    def summary(self):
        return ", ".join(f"{k} {v}" for k, v in self.stats.items())

    # --- one complaint's life -----------------------------------------------------------------------------------

    def _user(self, complaint):
        return self.users.get(complaint.department_id, self.dispatcher)

    def _complaint(self, category, point, at, spec, handon=None, batch=None):
        try:
            with clock.at(at):
                c = services.complaint_create(category=category, point=point, description=self._text(spec),
                                              attributes=answers(category, at), source="demo")
        except ComplaintError as exc:
            self.out.write(f"skipped a demo complaint: {exc}")
            return 0
        if batch is not None:
            c.department = self.departments.get(c.department_id, c.department)  # the same row, its authority loaded
            batch.adopt(c)
        try:
            self._life(c, category, spec, at, handon)
        except ComplaintError as exc:
            self.out.write(f"a demo complaint's history stopped early: {exc}")
        return 1

    def _due(self, t):
        return t <= self.now

    def _life(self, c, category, spec, t, handon):
        rng, plan = self.rng, self.plan
        if rng.random() < P_IGNORED and handon is None:
            self.stats["open"] += 1
            return
        t += datetime.timedelta(hours=rng.expovariate(1 / 18))
        if not self._due(t):
            self.stats["open"] += 1
            return
        with clock.at(t):
            c = services.complaint_take(complaint=c, user=self._user(c))
        target = None
        if handon is not None:
            target = handon
        elif spec.get("handon") and rng.random() < P_HANDON:
            choice = rng.choice(spec["handon"])
            target = (self._handon_department(c, category, choice["to"]), choice["reason"])
        if target and target[0] and target[0] != c.department_id:
            t += datetime.timedelta(hours=rng.uniform(1, 30))
            if not self._due(t):
                self.stats["open"] += 1
                return
            with clock.at(t):
                c = services.complaint_transfer(complaint=c, user=self._user(c), reason=target[1],
                                                department=self.departments[target[0]])
            self.stats["handed on"] += 1
            t += datetime.timedelta(hours=rng.expovariate(1 / 12))
            if not self._due(t):
                self.stats["open"] += 1
                return
            with clock.at(t):
                c = services.complaint_take(complaint=c, user=self._user(c))
        for round_no in range(2):
            t = self._answer_time(c, t)
            if not self._due(t):
                self.stats["open"] += 1
                return
            texts = plan["answers"]["redo"] if round_no else plan["answers"][rng.choice(["done", "done", "planned"])]
            with clock.at(t):
                c = services.complaint_answer(complaint=c, user=self._user(c), text=rng.choice(texts))
            self.stats["answered"] += 1
            self.stats["late"] += c.answered_at > c.deadline
            t += datetime.timedelta(hours=rng.uniform(2, 120))
            reaction = rng.random()
            if not self._due(t) or reaction >= P_CONFIRM + P_DENY:
                return
            key = confirmation_key(c)
            if reaction < P_CONFIRM or round_no:
                if round_no and reaction >= 0.75:
                    return
                with clock.at(t):
                    services.complaint_confirm(tracking_code=c.tracking_code, key=key)
                self.stats["confirmed"] += 1
                return
            with clock.at(t):
                c = services.complaint_deny(tracking_code=c.tracking_code, key=key, reason=rng.choice(plan["denials"]))
            self.stats["disputed"] += 1
            t += datetime.timedelta(hours=rng.uniform(4, 48))
            if not self._due(t):
                self.stats["open"] += 1
                return
            with clock.at(t):
                c = services.complaint_take(complaint=c, user=self._user(c))

    def _answer_time(self, c, t):
        """On time (somewhere before the deadline) or, for P_LATE of them, after it."""
        if self.rng.random() < P_LATE or c.deadline <= t:
            return max(t, c.deadline) + datetime.timedelta(hours=self.rng.uniform(2, 24 * 12))
        return t + (c.deadline - t) * self.rng.uniform(0.05, 0.95)

    def _handon_department(self, c, category, to):
        """The department a hand-on goes to: an authority named by code, or the district's / okrug's authority;
        the department the routing table gives it for the category, else its main one."""
        if to == "district":
            authority = self.area_authorities.get(c.area_id)
        elif to == "okrug":
            authority = self.area_parents.get(c.area_id)
        else:
            authority = self.by_code.get(to)
        if authority is None:
            return None
        return (self.assignments.get((authority, category.pk)) or self.assignments.get((authority, None))
                or self.main_departments.get(authority))
