"""Map aggregates: complaint counts per grid cell, kept current by triggers on complaints_complaint.

The residents' map draws, below web.tiles.RAW_MIN_ZOOM, one circle per grid cell instead of one per complaint.
A cell at view zoom z is a tile of zoom z + 3 (8 x 8 cells per map tile); this table holds the counts for the
levels 11..17 (view zooms 8..14), keyed by everything the map filters on, so a tile is one index range scan
however many complaints there are. Statement-level triggers with transition tables keep it exact and set-based:
a new complaint or a state change costs one upsert of 7 (or 14) rows, about 0.2 ms; a COPY of a million, one
grouped insert; an UPDATE that changes no mapped column (a re-route), one grouping of its rows and no write. Rows are written in key order, so concurrent writers queue instead of deadlocking. Levels and cell
size here must match web.tiles (MIN_ZOOM, RAW_MIN_ZOOM, CELL_SHIFT).
"""
from django.db import migrations

SQL = r"""
CREATE TABLE web_complaintcell (
    level smallint NOT NULL,
    tx integer NOT NULL,          -- the map tile (zoom level - 3) the cell lies in
    ty integer NOT NULL,
    cx integer NOT NULL,          -- the cell: a tile of zoom `level`
    cy integer NOT NULL,
    state varchar(16) NOT NULL,
    category_id bigint NOT NULL,
    area_id bigint NOT NULL,      -- 0 when the complaint has no area
    n integer NOT NULL,
    CONSTRAINT web_complaintcell_pkey PRIMARY KEY (level, tx, ty, cx, cy, state, category_id, area_id)
);

CREATE FUNCTION web_cell_x(lon double precision, level integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT LEAST(GREATEST(floor((lon + 180.0) / 360.0 * (1 << level))::integer, 0), (1 << level) - 1)
$$;

CREATE FUNCTION web_cell_y(lat double precision, level integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT LEAST(GREATEST(floor(
        (1.0 - ln(tan(radians(LEAST(GREATEST(lat, -85.0511), 85.0511)))
                  + 1.0 / cos(radians(LEAST(GREATEST(lat, -85.0511), 85.0511)))) / pi()) / 2.0 * (1 << level)
    )::integer, 0), (1 << level) - 1)
$$;

-- Add k (+1 or -1) for each given complaint to its cell at every level. PL/pgSQL, so that the statement's plan
-- is prepared once per connection, not for every complaint.
CREATE FUNCTION web_cells_apply(p_lon double precision[], p_lat double precision[], p_state text[],
                                p_category bigint[], p_area bigint[], p_k integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO web_complaintcell AS c (level, tx, ty, cx, cy, state, category_id, area_id, n)
    SELECT s.level, s.cx >> 3, s.cy >> 3, s.cx, s.cy, s.state, s.category_id, s.area_id, s.n
    FROM (
        SELECT l.level, web_cell_x(d.lon, l.level) AS cx, web_cell_y(d.lat, l.level) AS cy,
               d.state, d.category_id, d.area_id, sum(d.k)::integer AS n
        FROM unnest(p_lon, p_lat, p_state, p_category, p_area, p_k) AS d(lon, lat, state, category_id, area_id, k)
        CROSS JOIN generate_series(11, 17) AS l(level)
        GROUP BY 1, 2, 3, 4, 5, 6
    ) s
    WHERE s.n <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8   -- one lock order for all writers: no deadlocks between them
    ON CONFLICT ON CONSTRAINT web_complaintcell_pkey DO UPDATE SET n = c.n + EXCLUDED.n;
END $$;

CREATE FUNCTION web_complaintcell_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM web_cells_apply(array_agg(ST_X(location)), array_agg(ST_Y(location)), array_agg(state::text),
                            array_agg(category_id), array_agg(COALESCE(area_id, 0)), array_agg(1))
    FROM new_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION web_complaintcell_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM web_cells_apply(array_agg(ST_X(location)), array_agg(ST_Y(location)), array_agg(state::text),
                            array_agg(category_id), array_agg(COALESCE(area_id, 0)), array_agg(-1))
    FROM old_rows;
    RETURN NULL;
END $$;

-- An update adds each new row and takes away each old one; what changed nothing on the map (a re-route, an
-- answer's timestamp) cancels out before it reaches the cells. No join of the two transition tables: a plan
-- cached after one-row updates stays fast for a bulk update of 100,000 rows.
CREATE FUNCTION web_complaintcell_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM web_cells_apply(array_agg(lon), array_agg(lat), array_agg(state), array_agg(category_id),
                            array_agg(area_id), array_agg(k))
    FROM (
        SELECT lon, lat, state, category_id, area_id, sum(k)::integer AS k
        FROM (
            SELECT ST_X(location) AS lon, ST_Y(location) AS lat, state::text AS state, category_id,
                   COALESCE(area_id, 0) AS area_id, 1 AS k
            FROM new_rows
            UNION ALL
            SELECT ST_X(location), ST_Y(location), state::text, category_id, COALESCE(area_id, 0), -1
            FROM old_rows
        ) rows
        GROUP BY lon, lat, state, category_id, area_id
        HAVING sum(k) <> 0
    ) moved;
    RETURN NULL;
END $$;

CREATE FUNCTION web_complaintcell_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE web_complaintcell;
    RETURN NULL;
END $$;

-- Recount everything from complaints_complaint (a repair tool: the triggers keep the table exact).
CREATE FUNCTION web_complaintcell_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE complaints_complaint IN SHARE MODE;
    TRUNCATE web_complaintcell;
    PERFORM web_cells_apply(array_agg(ST_X(location)), array_agg(ST_Y(location)), array_agg(state::text),
                            array_agg(category_id), array_agg(COALESCE(area_id, 0)), array_agg(1))
    FROM complaints_complaint;
END $$;

CREATE TRIGGER web_complaintcell_insert AFTER INSERT ON complaints_complaint
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION web_complaintcell_on_insert();
CREATE TRIGGER web_complaintcell_update AFTER UPDATE ON complaints_complaint
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION web_complaintcell_on_update();
CREATE TRIGGER web_complaintcell_delete AFTER DELETE ON complaints_complaint
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION web_complaintcell_on_delete();
CREATE TRIGGER web_complaintcell_truncate AFTER TRUNCATE ON complaints_complaint
    FOR EACH STATEMENT EXECUTE FUNCTION web_complaintcell_on_truncate();

SELECT web_complaintcell_rebuild();
"""

REVERSE_SQL = r"""
DROP TRIGGER IF EXISTS web_complaintcell_insert ON complaints_complaint;
DROP TRIGGER IF EXISTS web_complaintcell_update ON complaints_complaint;
DROP TRIGGER IF EXISTS web_complaintcell_delete ON complaints_complaint;
DROP TRIGGER IF EXISTS web_complaintcell_truncate ON complaints_complaint;
DROP FUNCTION IF EXISTS web_complaintcell_rebuild(), web_complaintcell_on_truncate(),
    web_complaintcell_on_update(), web_complaintcell_on_delete(), web_complaintcell_on_insert(),
    web_cells_apply(double precision[], double precision[], text[], bigint[], bigint[], integer[]),
    web_cell_y(double precision, integer), web_cell_x(double precision, integer);
DROP TABLE IF EXISTS web_complaintcell;
"""


class Migration(migrations.Migration):
    dependencies = [("complaints", "0002_initial")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
