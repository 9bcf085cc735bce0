"""Vector tiles of complaints for the residents' map (`/tiles/complaints/{z}/{x}/{y}.mvt`).

From RAW_MIN_ZOOM on, a tile holds one point per complaint (properties: id, state). Below it, a tile holds one
point per grid cell (8 x 8 cells per tile, at the cell's centre, so a circle of up to 16 px is never cut by the
tile's edge) with the number of complaints in it and the count per state; the counts come from
web_complaintcell, which triggers keep exact (see web/migrations/0001_complaint_cells.py), so a city-wide tile
costs the same with a thousand complaints or a million (the map as it opens, with no category or district filter,
reads web_complaintcellstate: the counts per cell and state only, at most 576 rows a tile). Hidden complaints (moderation) are never drawn.
"""
from dataclasses import dataclass, field

from complaints.models import State
from geo_ourcity.db_router import read_connection

LAYER = "complaints"
EXTENT = 4096
MIN_ZOOM = 8  # below this, tiles are empty: the whole city fits on the screen at zoom 9
RAW_MIN_ZOOM = 15  # from this zoom on, one point per complaint
CELL_SHIFT = 3  # a cell at view zoom z is a tile of zoom z + 3: 8 x 8 cells per map tile
MAX_ZOOM = 22
RAW_BUFFER_PX = 8  # points this close to the tile edge are drawn in both tiles, so circles are not cut
# The states drawn on the public map, in legend order.
PUBLIC_STATES = [s for s in State if s != State.HIDDEN]


@dataclass(frozen=True)
class MapFilter:
    """What the resident chose to see; empty means everything."""

    states: tuple = ()
    category_ids: tuple = ()
    area_id: int | None = None
    nothing: bool = field(default=False)  # a filter that matches no category (e.g. an unknown code)

    def sql(self, alias=""):
        """SQL conditions (each starting with AND) and their parameters."""
        p = f"{alias}." if alias else ""
        clauses, params = [], []
        states = [s for s in self.states if s in PUBLIC_STATES] if self.states else []
        if self.states and not states:
            clauses.append("AND false")
        if states:
            clauses.append(f"AND {p}state = ANY(%s)")
            params.append(states)
        else:
            clauses.append(f"AND {p}state <> %s")
            params.append(State.HIDDEN.value)
        if self.nothing:
            clauses.append("AND false")
        elif self.category_ids:
            clauses.append(f"AND {p}category_id = ANY(%s)")
            params.append(list(self.category_ids))
        if self.area_id is not None:
            clauses.append(f"AND {p}area_id = %s")
            params.append(self.area_id)
        return " ".join(clauses), params


def valid_tile(z, x, y):
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def complaints_tile(z, x, y, flt=MapFilter()):
    """The MVT tile (bytes, possibly empty) of complaints at z/x/y under the filter."""
    if z < MIN_ZOOM:
        return b""
    sql, params = (_raw_sql if z >= RAW_MIN_ZOOM else _cells_sql)(z, x, y, flt)
    with read_connection().cursor() as cur:  # the replica in a view whose reads may be stale
        cur.execute(sql, params)
        row = cur.fetchone()
    return bytes(row[0]) if row and row[0] else b""


def _raw_sql(z, x, y, flt):
    where, params = flt.sql("c")
    margin = RAW_BUFFER_PX / 256
    sql = f"""
        SELECT ST_AsMVT(t, %s, %s, 'geom') FROM (
            SELECT ST_AsMVTGeom(ST_Transform(c.location, 3857), ST_TileEnvelope(%s, %s, %s), %s, %s, true) AS geom,
                   c.id, c.state
            FROM complaints_complaint c
            WHERE c.location && ST_Transform(ST_TileEnvelope(%s, %s, %s, margin => %s), 4326) {where}
        ) t
    """
    buffer = EXTENT * RAW_BUFFER_PX // 256
    return sql, [LAYER, EXTENT, z, x, y, EXTENT, buffer, z, x, y, margin, *params]


def _cells_sql(z, x, y, flt):
    where, params = flt.sql()
    # Without a category or district filter, the counts summed over them (at most one row per cell and state:
    # web/migrations/0002_complaint_cells_by_state.py); with one, the full counts.
    table = "web_complaintcell" if flt.category_ids or flt.area_id is not None or flt.nothing \
        else "web_complaintcellstate"
    cells = 1 << CELL_SHIFT
    size = EXTENT // cells  # a cell's side in tile units
    per_state = ", ".join(f"(sum(n) FILTER (WHERE state = '{s.value}'))::integer AS \"{s.value}\"" for s in PUBLIC_STATES)
    sql = f"""
        SELECT ST_AsMVT(t, %s, %s, 'geom') FROM (
            SELECT ST_MakePoint((cx - %s) * {size} + {size // 2}, (cy - %s) * {size} + {size // 2}) AS geom,
                   sum(n)::integer AS n, {per_state}
            FROM {table}
            WHERE level = %s AND tx = %s AND ty = %s {where}
            GROUP BY cx, cy
            HAVING sum(n) > 0
        ) t
    """
    return sql, [LAYER, EXTENT, x * cells, y * cells, z + CELL_SHIFT, x, y, *params]
