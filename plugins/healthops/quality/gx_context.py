"""The Great Expectations context of the process, and GX imported quietly.

Importing this module is cheap (GX itself is imported on first use, ~8 s on a
small machine) and quietens GX first, so every importer benefits:

- ``great_expectations._docs_decorators`` logs hundreds of INFO "Skipping
  registering function" lines at import; under Airflow's INFO root logger they
  flood the task log.
- progress bars (tqdm "Calculating Metrics") are switched off in the context config.
- usage statistics: GX 1.24 has no analytics client left (the module and its
  PostHog dependency are gone; ``analytics_enabled`` is accepted and ignored). We
  still set ``analytics_enabled: False`` and ``GX_ANALYTICS_ENABLED=False`` so an
  upgrade that brings analytics back finds it off: a hospital network allows no
  calls to third parties.
"""

from __future__ import annotations

import logging
import os
import threading

# Loggers that talk at INFO about GX internals, not about our data.
_NOISY_GX_LOGGERS = (
    "great_expectations._docs_decorators",  # "Skipping registering function ..." x ~200 at import
    "great_expectations.expectations.registry",  # "Multiple declarations of metric ..."
)


def quiet_gx() -> None:
    """Silence GX's import-time chatter and opt out of analytics. Idempotent."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    for name in _NOISY_GX_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # The rest of GX logs a few INFO lines per run about its internals ("Setting
    # marts to lowercase ..."); keep its warnings, unless someone configured it.
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)


quiet_gx()

_lock = threading.RLock()
_context = None


def import_gx():
    """``great_expectations``, imported with the noise off."""
    quiet_gx()
    import great_expectations as gx

    return gx


def get_context():
    """The process's GX context: ephemeral, no Data Docs temp dirs, no progress
    bars, analytics off."""
    global _context
    with _lock:
        if _context is None:
            gx = import_gx()
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            project_config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            _context = gx.get_context(mode="ephemeral", project_config=project_config)
        return _context
