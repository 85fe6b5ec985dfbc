"""Scale-out: jobs on Apache Spark that write the same versioned artifacts as the local trainer.

One concept per module: ``session`` (the Spark session and ``--conf`` pairs), ``snapshot`` (a
Parquet export read on Spark with the local rules for item events, weights and item indices),
``popular``, ``covisit``, ``item_knn`` and ``als`` (one source each), ``complements`` (bought together), ``neighbors`` (top-N lists per
item by a window), ``heldout`` (the split and the fusion's tuning) and ``job`` (the training run,
published through :mod:`shopsense.versions`). Which sources run on Spark and why is written at the
top of ``job``. Nothing here is imported by the library; PySpark is imported inside functions, so
this package imports without it.
"""
