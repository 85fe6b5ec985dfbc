"""The Spark session a job runs in: the master (``local[2]`` unless told), the defaults a small job
needs, and the ``--conf k=v`` pairs of the command line on top.

PySpark starts its JVM from the jars it ships (no Maven repository is reached at run time). The
workers run this same Python (``spark.pyspark.python``) so a job's Python side matches the driver's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from shopsense.exceptions import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"
#: a training's defaults: few shuffle partitions (the default 200 is for large clusters: on a small
#: job it is 200 tiny tasks per stage), no web UI, UTC, this Python on the workers
DEFAULTS = {
    "spark.sql.shuffle.partitions": "4",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.execution.arrow.pyspark.enabled": "true",  # the catalog and per-item sums cross as Arrow
    "spark.pyspark.python": sys.executable,
}


def parse_conf(pairs: Iterable[str] | None) -> dict[str, str]:
    """``["spark.driver.memory=512m", ...]`` -> a dict; a pair without ``=`` is a ConfigError."""
    out: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf {pair!r}: expected KEY=VALUE, e.g. spark.driver.memory=2g")
        out[key.strip()] = value.strip()
    return out


def spark_session(
    master: str | None = None, conf: Mapping[str, str] | None = None, app_name: str = "shopsense-train"
) -> SparkSession:
    """A Spark session on ``master`` with :data:`DEFAULTS` under ``conf``. An active session is
    reused by Spark itself (``getOrCreate``); settings of its JVM (driver memory) then stay as they were.

    Without ``master``: the one ``spark-submit --master`` gave (a process spark-submit started has
    ``PYSPARK_GATEWAY_PORT`` set), else :data:`DEFAULT_MASTER`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError("Spark training needs PySpark: pip install 'shopsense[spark]' (and Java 17)") from None
    builder = SparkSession.builder.appName(app_name)
    if master or not os.environ.get("PYSPARK_GATEWAY_PORT"):
        builder = builder.master(master or DEFAULT_MASTER)
    settings = {**DEFAULTS, **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # PySpark's context starts its Python workers (mapInPandas, TorchDistributor) with PYSPARK_PYTHON,
    # else `python3` on the PATH, which lacks shopsense's packages: only spark-submit turns
    # spark.pyspark.python into that variable, and a library leaves the environment alone
    if "PYSPARK_PYTHON" not in os.environ:
        session.sparkContext.pythonExec = settings["spark.pyspark.python"]
    return session
