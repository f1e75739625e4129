"""Bulk inserts for hot paths (imports, ledgers, tracking hits): many rows, one driver-level executemany.

SQLAlchemy Core processes every bound value of every row in Python; for a 100,000-row import that
per-value work (datetime formatting, JSON encoding) costs more than the insert itself. Here each
column's bind processor is looked up once, repeated values (the same `now` on every row) are processed
once, and the rows go to the driver's executemany in one call, on the caller's connection and
transaction. On PostgreSQL the rows go through COPY instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Table


def _processed_rows(
    conn: Connection, table: Table, names: list[str], rows: Sequence[dict[str, Any]]
) -> list[list[Any]]:
    """Each row's values in `names` order, through the columns' bind processors.

    A column whose value is the same object on every row (the import's one `now`) is processed once;
    other values go through a per-value memo, since datetimes and short strings repeat a lot.
    """
    getter = itemgetter(*names)
    out = [list(getter(row)) if len(names) > 1 else [row[names[0]]] for row in rows]
    for i, name in enumerate(names):
        process = table.c[name].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        if process is None:
            continue
        first = out[0][i]
        if all(values[i] is first for values in out):
            converted = process(first)
            for values in out:
                values[i] = converted
            continue
        convert = _memo(process)
        for values in out:
            values[i] = convert(values[i])
    return out


def _memo(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    cache: dict[Any, Any] = {}

    def processed(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = process(value)
            return result
        except TypeError:  # unhashable (dicts for JSON columns): no memo
            return process(value)

    return processed


def insert_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """INSERT `rows` (dicts with the same keys) into `table` with one executemany."""
    if not rows:
        return
    columns = list(rows[0])
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    _executemany(conn, table.insert(), table, columns, rows)


def _executemany(
    conn: Connection, statement: Any, table: Table, columns: list[str], rows: Sequence[dict[str, Any]]
) -> None:
    """`statement` (an INSERT into `table`) compiled once, the processed rows through executemany."""
    compiled = statement.compile(dialect=conn.dialect, column_keys=columns)
    names = list(compiled.positiontup or ()) if compiled.positional else columns
    values = _processed_rows(conn, table, names, rows)
    if compiled.positional:
        params: list[Any] = [tuple(v) for v in values]
    else:
        params = [dict(zip(names, v, strict=True)) for v in values]
    conn.exec_driver_sql(str(compiled), params)


def insert_new(conn: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """INSERT `rows`, leaving out those whose `keys` are taken already (ON CONFLICT DO NOTHING).

    On PostgreSQL the rows are copied into a temporary table dropped at commit, then moved over in
    one INSERT ... SELECT: executemany would run one statement per row (about 90 us each, server side).
    """
    if not rows:
        return
    columns = list(rows[0])
    quote = conn.dialect.identifier_preparer
    names = ", ".join(quote.quote(c) for c in columns)
    if conn.dialect.name == "postgresql":
        temp = quote.quote(f"new_{table.name}")
        # The rows' columns only, with their types and no constraints (the table's id is left out).
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE {temp} ON COMMIT DROP AS "
            f"SELECT {names} FROM {quote.format_table(table)} WITH NO DATA"
        )
        _copy(conn, table, columns, rows, into=temp)
        conn.exec_driver_sql(
            f"INSERT INTO {quote.format_table(table)} ({names}) SELECT {names} FROM {temp} "
            f"ON CONFLICT ({', '.join(quote.quote(k) for k in keys)}) DO NOTHING"
        )
        conn.exec_driver_sql(f"DROP TABLE {temp}")
        return
    from sqlalchemy.dialects.sqlite import insert

    _executemany(conn, insert(table).on_conflict_do_nothing(index_elements=list(keys)), table, columns, rows)


def _copy(
    conn: Connection, table: Table, columns: list[str], rows: Sequence[dict[str, Any]], into: str = ""
) -> None:
    """PostgreSQL: COPY FROM STDIN, an order of magnitude faster than executemany, same transaction."""
    quote = conn.dialect.identifier_preparer
    target = into or quote.format_table(table)
    sql = f"COPY {target} ({', '.join(quote.quote(c) for c in columns)}) FROM STDIN"
    dbapi: Any = conn.connection.dbapi_connection  # a psycopg Connection
    with dbapi.cursor() as cursor, cursor.copy(sql) as copy:
        for values in _processed_rows(conn, table, columns, rows):
            copy.write_row(values)
