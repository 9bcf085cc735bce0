"""Map aggregates, coarser: complaint counts per grid cell and state only (web_complaintcellstate), beside the
counts per cell, state, category and area (web_complaintcell, 0001).

A zoomed-out tile without a category or district filter (the map as it opens) read every (state, category, area)
row of its 64 cells: at 5,000,000 complaints (bench/map_replica_bench.py) the densest zoom 10 tile of the city
summed 42,267 rows, 154 ms of PostgreSQL execution (EXPLAIN ANALYZE, median of 9, on a machine shared with other
work, load average 14); summed over category and area, a cell has at most one row per state (the same tile: 530
rows, 1.0 ms), so such a tile stays at most 9 x 64 = 576 rows whatever the number of complaints.
The same triggers keep both tables exact in the same statement (web_cells_apply writes both, in key order).
"""
from django.db import migrations

SQL = r"""
CREATE TABLE web_complaintcellstate (
    level smallint NOT NULL,
    tx integer NOT NULL,
    ty integer NOT NULL,
    cx integer NOT NULL,
    cy integer NOT NULL,
    state varchar(16) NOT NULL,
    n integer NOT NULL,
    CONSTRAINT web_complaintcellstate_pkey PRIMARY KEY (level, tx, ty, cx, cy, state)
);

CREATE OR REPLACE FUNCTION web_cells_apply(p_lon double precision[], p_lat double precision[], p_state text[],
                                           p_category bigint[], p_area bigint[], p_k integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    WITH s AS (
        SELECT l.level, web_cell_x(d.lon, l.level) AS cx, web_cell_y(d.lat, l.level) AS cy,
               d.state, d.category_id, d.area_id, sum(d.k)::integer AS n
        FROM unnest(p_lon, p_lat, p_state, p_category, p_area, p_k) AS d(lon, lat, state, category_id, area_id, k)
        CROSS JOIN generate_series(11, 17) AS l(level)
        GROUP BY 1, 2, 3, 4, 5, 6
    ), full_counts AS (
        INSERT INTO web_complaintcell AS c (level, tx, ty, cx, cy, state, category_id, area_id, n)
        SELECT s.level, s.cx >> 3, s.cy >> 3, s.cx, s.cy, s.state, s.category_id, s.area_id, s.n
        FROM s
        WHERE s.n <> 0
        ORDER BY 1, 2, 3, 4, 5, 6, 7, 8   -- one lock order for all writers: no deadlocks between them
        ON CONFLICT ON CONSTRAINT web_complaintcell_pkey DO UPDATE SET n = c.n + EXCLUDED.n
    )
    INSERT INTO web_complaintcellstate AS c (level, tx, ty, cx, cy, state, n)
    SELECT s.level, s.cx >> 3, s.cy >> 3, s.cx, s.cy, s.state, sum(s.n)::integer
    FROM s
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(s.n) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT ON CONSTRAINT web_complaintcellstate_pkey DO UPDATE SET n = c.n + EXCLUDED.n;
END $$;

CREATE OR REPLACE FUNCTION web_complaintcell_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE web_complaintcell, web_complaintcellstate;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION web_complaintcell_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE complaints_complaint IN SHARE MODE;
    TRUNCATE web_complaintcell, web_complaintcellstate;
    PERFORM web_cells_apply(array_agg(ST_X(location)), array_agg(ST_Y(location)), array_agg(state::text),
                            array_agg(category_id), array_agg(COALESCE(area_id, 0)), array_agg(1))
    FROM complaints_complaint;
END $$;

-- The coarse counts from the fine ones, with writers held off so that none is counted twice or missed.
LOCK TABLE complaints_complaint IN SHARE MODE;
INSERT INTO web_complaintcellstate (level, tx, ty, cx, cy, state, n)
SELECT level, tx, ty, cx, cy, state, sum(n)::integer FROM web_complaintcell
GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(n) <> 0;
ANALYZE web_complaintcellstate;
"""

# 0001's functions again.
REVERSE_SQL = r"""
CREATE OR REPLACE FUNCTION web_cells_apply(p_lon double precision[], p_lat double precision[], p_state text[],
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
    ORDER BY 1, 2, 3, 4, 5, 6, 7, 8
    ON CONFLICT ON CONSTRAINT web_complaintcell_pkey DO UPDATE SET n = c.n + EXCLUDED.n;
END $$;

CREATE OR REPLACE FUNCTION web_complaintcell_on_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE web_complaintcell;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION web_complaintcell_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE complaints_complaint IN SHARE MODE;
    TRUNCATE web_complaintcell;
    PERFORM web_cells_apply(array_agg(ST_X(location)), array_agg(ST_Y(location)), array_agg(state::text),
                            array_agg(category_id), array_agg(COALESCE(area_id, 0)), array_agg(1))
    FROM complaints_complaint;
END $$;

DROP TABLE IF EXISTS web_complaintcellstate;
"""


class Migration(migrations.Migration):
    dependencies = [("web", "0001_complaint_cells")]

    operations = [migrations.RunSQL(SQL, REVERSE_SQL)]
