"""PostgreSQL read by Spark's JDBC source: the events go from the database straight to the executors,
in ranges of their arrival number ``seq`` (one query per partition), without a Parquet copy and
without passing through the driver. The catalog (catalog-sized) is read on the driver as the Parquet
path reads it.

Spark must have PostgreSQL's JDBC driver on its classpath; nothing may fetch it from Maven at run
time. :func:`jdbc_conf` adds the jar Debian's ``libpostgresql-jdbc-java`` installs
(``/usr/share/java/postgresql.jar``), or ``SHOPSENSE_JDBC_JAR``, as ``spark.jars`` to a session this job
starts; a cluster started otherwise needs it in its own ``spark.jars`` (``--conf spark.jars=...``).
The same rows as the export: every event of shoppers who have not opted out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shopsense import columns as C
from shopsense.config import EventWeights
from shopsense.data.export import SEQ
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.exceptions import ConfigError
from shopsense.store import tables as T

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from shopsense.store import KnowledgeStore

DEBIAN_JAR = Path("/usr/share/java/postgresql.jar")
DRIVER = "org.postgresql.Driver"


def jdbc_jar() -> Path | None:
    """PostgreSQL's JDBC driver: ``SHOPSENSE_JDBC_JAR``, else Debian's, else None."""
    given = os.environ.get("SHOPSENSE_JDBC_JAR")
    if given:
        return Path(given)
    return DEBIAN_JAR if DEBIAN_JAR.is_file() else None


def jdbc_conf(conf: Mapping[str, str] | None) -> dict[str, str]:
    """``conf`` with the driver's jar added to ``spark.jars`` (unless it names one already)."""
    out = dict(conf or {})
    if "spark.jars" in out:
        return out
    jar = jdbc_jar()
    if jar is None:
        raise ConfigError(
            "--read jdbc needs PostgreSQL's JDBC driver: apt-get install libpostgresql-jdbc-java, or set "
            "SHOPSENSE_JDBC_JAR, or --conf spark.jars=/path/to/postgresql.jar"
        )
    out["spark.jars"] = str(jar)
    return out


def jdbc_source(store_url: str) -> tuple[str, dict[str, str]]:
    """The JDBC URL of a ``postgresql://`` store URL and the connection properties (user, password,
    and query options such as ``sslmode``)."""
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"--read jdbc reads PostgreSQL; this store is {url.get_backend_name()} (use --read parquet)")
    props = {k: str(v) for k, v in url.query.items() if isinstance(v, str)}
    if url.username:
        props["user"] = url.username
    if url.password:
        props["password"] = str(url.password)
    return f"jdbc:postgresql://{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}", props


def from_postgres(
    spark: SparkSession, store: KnowledgeStore, weights: EventWeights | None = None, partitions: int | None = None
) -> SparkSnapshot:
    """The shop in ``store`` (PostgreSQL) on ``spark``, its events read over JDBC in ``partitions``
    ranges of ``seq`` (default: the session's parallelism)."""
    url, props = jdbc_source(store.url)
    t, u = T.events, T.users
    with store.engine.connect() as c:
        lo, hi = c.execute(select(func.min(t.c[SEQ]), func.max(t.c[SEQ]))).one()
    columns = ", ".join(f'"{name}"' for name in (*C.EVENT_COLUMNS, SEQ))
    opted_out = f'SELECT "{C.USER}" FROM {u.name} WHERE "{C.OPTED_OUT}" = 1'
    # every Spark action reads the table again: events that arrive during the training are left out
    # (seq above today's last), so every source is fitted on the same rows
    frozen = f' AND "{SEQ}" <= {int(hi)}' if hi is not None else ""
    query = f'(SELECT {columns} FROM {t.name} WHERE "{C.USER}" NOT IN ({opted_out}){frozen}) AS shop_events'
    reader = (
        spark.read.format("jdbc")
        .option("url", url)
        .option("dbtable", query)
        .option("driver", DRIVER)
        .option("fetchsize", "10000")
        .options(**props)
    )
    if lo is not None:
        n = partitions or spark.sparkContext.defaultParallelism
        reader = (
            reader.option("partitionColumn", SEQ)
            .option("lowerBound", str(int(lo)))
            .option("upperBound", str(int(hi) + 1))
            .option("numPartitions", str(max(1, n)))
        )
    return SparkSnapshot(spark, reader.load(), store.products(), weights)
