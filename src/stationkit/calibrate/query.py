"""The calibration SQL: map readings to segments, transform, deduplicate, flag.

Tables the engine registers before these queries run (names are ours, never
user text; channel and point names only ever arrive as column values):

``seg``
    one row per segment id (``sid``): channel, statistic match, local-time
    bounds ``[f, t)``, transform kind and coefficients, QC range, point id
    ``ptid``, (point, statistic) rank ``pkey``;
``file_offsets`` (``shifted`` only)
    file id -> the UTC offset its labels were converted with [us];
``file_rank`` (``dedupe`` only)
    file id -> rank by (last timestamp, file id): the dedupe preference;
``flag_iv`` (``with_flags``)
    merged manual flag intervals by point id and statistic key;
``qc_hits`` (``with_hits``)
    (point id, timestamp) -> QC bits.

Parameters: ``$plain`` / ``$dedupe`` (readings file lists), ``$lo`` / ``$hi``
(the UTC period read: the batch and its QC context) and ``$out_lo`` /
``$out_hi`` (the batch itself).
"""

from __future__ import annotations

from stationkit.calibrate.qc import QC_BITS, QC_RANGE

#: the flag key of a row: manual flag set id * 16 + QC bits
QC_SPAN = 16

_VALUE = """CASE s.kind
        WHEN 'full' THEN s.cs * ((r.value - s.lo) / s.ls) + s.co
        WHEN 'wrap' THEN (s.cs * ((r.value - s.lo) / s.ls) + s.co)
            - 360 * floor((s.cs * ((r.value - s.lo) / s.ls) + s.co) / 360)
        WHEN 'ratio' THEN r.value * (s.cs / s.ls)
        ELSE r.value END"""


def _mapped(source: str, *, shifted: bool, dedupe: bool, qc_only: bool) -> str:
    """Readings of ``source`` in [$lo, $hi) mapped to segments and transformed."""
    ct = "(r.timestamp + to_microseconds(o.shift_us))" if shifted else "r.timestamp"
    offsets = "JOIN file_offsets o ON o.file_id = r.file_id" if shifted else ""
    rank = "JOIN file_rank k ON k.file_id = r.file_id" if dedupe else ""
    extra = ", k.rank AS frank" if dedupe else ""
    if qc_only:
        columns = "s.ptid, s.qst"
        only = "AND r.channel IN (SELECT channel FROM qc_channels)"
    else:
        columns = "s.sid, s.range_lo, s.range_hi"
        only = ""
    return f"""
    SELECT r.timestamp, s.pkey, s.ptid, {columns},
        {_VALUE} AS value,
        r.value AS raw_value, r.file_id, r.file_row_number AS frn, {ct} AS ct{extra}
    FROM {source} r {offsets} {rank}
    LEFT JOIN seg s ON s.channel = r.channel
        AND (NOT s.rstat_match OR s.rstat IS NOT DISTINCT FROM r.statistic)
        AND {ct} >= s.f AND {ct} < s.t
    WHERE r.timestamp >= $lo AND r.timestamp < $hi AND s.ignored IS NOT TRUE {only}"""


def union_sql(plain: bool, dedupe: bool, *, shifted: bool, qc_only: bool = False) -> str:
    """Mapped readings of both file lists, one row per key for ``$dedupe``.

    Dedupe rule, among the readings of one (point, statistic, timestamp):
    a non-null value first, then the file reaching the latest time, then the
    higher file id (both in ``file_rank``), then the later row of the file.
    """
    parts: list[str] = []
    if plain:
        parts.append(
            _mapped(
                "read_parquet($plain, file_row_number = true)",
                shifted=shifted,
                dedupe=False,
                qc_only=qc_only,
            )
        )
    if dedupe:
        inner = _mapped(
            "read_parquet($dedupe, file_row_number = true)",
            shifted=shifted,
            dedupe=True,
            qc_only=qc_only,
        )
        parts.append(
            f"""
    SELECT * EXCLUDE (frank) FROM ({inner}) m
    QUALIFY row_number() OVER (
        PARTITION BY pkey, timestamp
        ORDER BY raw_value IS NULL, frank DESC, frn DESC) = 1"""
        )
    return "\nUNION ALL\n".join(parts)


def clean_sql(
    *,
    plain: bool,
    dedupe: bool,
    shifted: bool,
    with_flags: bool,
    with_hits: bool,
    ordered: bool,
) -> str:
    """The batch query: one row per clean value in [$out_lo, $out_hi).

    Columns: ``timestamp``, ``sid`` (segment id: point, measurement type,
    height and statistic follow from it), ``value``, ``raw_value``, ``fkey``
    (manual flag set id * 16 + QC bits) and ``file_id``. ``ordered``: sorted
    by time, then (point, statistic) -- a total order (file and row number
    break the ties a file without duplicates never has), the same whatever
    the threads or the months around; else in the order one DuckDB thread
    streams the inputs, a function of the inputs alone.
    """
    joins = ""
    fkey = (
        f"CASE WHEN u.value < u.range_lo OR u.value > u.range_hi "
        f"THEN {QC_BITS[QC_RANGE]} ELSE 0 END"
    )
    if with_flags:
        joins += """
LEFT JOIN flag_iv f ON f.ptid = u.ptid AND (f.pkey = -1 OR f.pkey = u.pkey)
    AND u.ct >= f.f AND u.ct < f.t"""
        fkey += f" + coalesce(f.fid, 0) * {QC_SPAN}"
    if with_hits:
        joins += """
LEFT JOIN qc_hits h ON h.point = u.ptid AND h.timestamp = u.timestamp"""
        fkey += " + coalesce(h.mask, 0)"
    return f"""
SELECT u.timestamp, u.sid, u.value, u.raw_value, ({fkey})::BIGINT AS fkey, u.file_id
FROM ({union_sql(plain, dedupe, shifted=shifted)}) u{joins}
WHERE u.timestamp >= $out_lo AND u.timestamp < $out_hi
{"ORDER BY u.timestamp, u.pkey, u.file_id, u.frn" if ordered else ""}"""
