"""Process-wide settings for the programs built on shopsense: the CLI, the server and its workers,
the benchmarks. Importing the library sets none of them (a program that imports shopsense keeps
its own environment); each entry point calls :func:`set_process_defaults` first."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: variable -> value, each with why an entry point wants it
PROCESS_ENV: dict[str, str] = {
    # OpenMP threads of LightGBM, torch and faiss spin between calls by default, which on a small
    # machine steals the core the next request needs (search p50 fell from ~460 ms to ~47 ms with
    # PASSIVE). OpenMP reads it when it loads: set it before torch or LightGBM is imported.
    "OMP_WAIT_POLICY": "PASSIVE",
    # Model weights come from local folders (the default encoder ships as a package): a server or a
    # training must never wait on the Hugging Face hub. huggingface_hub reads it when it is imported.
    "HF_HUB_OFFLINE": "1",
    # A tokenizer used before a fork (the server starting a trainer, evaluation workers) otherwise
    # warns and turns its threads off in the child anyway.
    "TOKENIZERS_PARALLELISM": "false",
}


#: the GIL's switch interval in a serving process (Python's default: 5 ms)
SERVING_SWITCH_INTERVAL_S = 0.0005

#: the thread-pool sizes a serving process sets to 1 (:func:`serving_threads`)
SERVING_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def process_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The variables of :data:`PROCESS_ENV` that ``environ`` does not set (a value the user chose is kept)."""
    return {k: v for k, v in PROCESS_ENV.items() if k not in environ}


def set_process_defaults() -> None:
    """Add the missing :data:`PROCESS_ENV` variables to this process's environment. Call it before
    torch, LightGBM or sentence-transformers are imported."""
    os.environ.update(process_environment())


def serving_threads() -> None:
    """One thread for the BLAS and OpenMP kernels of a serving process, and a short GIL switch interval.

    Its requests run small matrix products (a shopper's profile against a few thousand product
    vectors); on two threads OpenBLAS's second thread spins after each one, so such a product cost
    2.4 ms of CPU instead of 0.3 ms, and a server whose new-product pool fell below the size that gets
    an index (after an incremental training) went from 35% to 95% CPU under the same traffic. Concurrency comes from the workers.
    Libraries loaded later read the environment instead: OpenBLAS and OpenMP size their pools when
    they load (scipy's OpenBLAS and LightGBM's OpenMP load with the model version, after this call),
    so the variables are set too, unless the user set them."""
    from threadpoolctl import threadpool_limits

    for var in SERVING_THREAD_VARS:
        os.environ.setdefault(var, "1")
    threadpool_limits(1)  # every library already loaded (OpenBLAS, OpenMP): for the life of the process
    # The GIL: a model version loads on a background thread while the event loop serves. Each time the
    # loop's thread releases the GIL (every socket call) it waits up to the switch interval to get it
    # back, 20-odd times a request: with the default 5 ms, a simulated request took p99 103 ms during
    # a version load (the soak's swap minute: p99 4.5 s, two workers loading on two cores); with 0.5 ms,
    # 18.9 ms, and the load took no longer (7.6 s vs 8.0 s).
    sys.setswitchinterval(SERVING_SWITCH_INTERVAL_S)
