"""The Great Expectations Data Docs site for auditors: every suite, every validation
run, as static HTML under ``$HEALTHOPS_OUT/data_docs/`` (``index.html``).

Why a second, small GX context rather than the validation context of
``gx_runner``: that one is ephemeral and in memory (fast, no secrets on disk:
its data source holds the warehouse URL). The site's index lists only results
that are still in the context's validation results store, so history across
nights needs a store on disk. This context has exactly two stores on disk, under
``$HEALTHOPS_HOME/gx/``: ``validations/`` (one JSON file per suite run, the same
content as ``audit.validation_runs.gx_result``: rule ids, counts and at most
``outcomes.PARTIAL_VALUES`` values per failing rule, of allowed columns only) and ``expectations/``
(the suites as last run). It has no data source: building the site reads
nothing from the warehouse.

After each validation run, ``build(summaries)`` copies that run's results from
the validation context, renders only their pages (and the suites'), and rewrites
the index, so a nightly build costs the same on night 400 as on night 1, apart
from the index (capped at ``INDEX_RUNS`` runs, newest first).

No PHI, owner-only: every result is redacted (``healthops.quality.evidence``: no
values of a column off its rule file's ``evidence_columns``) before it is written
to the store or rendered, and the store and the site are written under umask 077
and then set to 0700 (directories) / 0600 (files), whatever GX or an earlier
release left there. Serve the site through a process of the same user (or copy it).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from pathlib import Path
from typing import Iterable

from healthops import config
from healthops.quality import evidence

log = logging.getLogger(__name__)

SITE_NAME = "healthops"
SITE_DIR = "data_docs"
# The index lists this many suite runs, newest first (5 suites a night: about 6
# weeks). Older runs keep their pages; the audit schema keeps every run.
INDEX_RUNS = 200
URL_ENV = "HEALTHOPS_DATA_DOCS_URL"

_lock = threading.RLock()
_contexts: dict[tuple[Path, Path], object] = {}


def site_dir() -> Path:
    return config.out() / SITE_DIR


def store_dir() -> Path:
    return config.home() / "gx"


def index_path() -> Path:
    return site_dir() / "index.html"


def site_url() -> str | None:
    """Where reports link to the site: ``$HEALTHOPS_DATA_DOCS_URL`` (the site served
    over HTTP in production), else the ``file://`` URL of the local index once it
    has been built; None before the first build."""
    configured = os.environ.get(URL_ENV)
    if configured:
        return configured
    index = index_path()
    return index.as_uri() if index.exists() else None


def docs_context(root: Path | None = None, site: Path | None = None):
    """The Data Docs context for a store directory and a site directory (made once
    per pair in a process)."""
    root = (root or store_dir()).resolve()
    site = (site or site_dir()).resolve()
    with _lock:
        if (root, site) not in _contexts:
            from healthops.quality.gx_context import import_gx

            gx = import_gx()
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            defaults = InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
            for name, sub in (
                (defaults.expectations_store_name, "expectations"),
                (defaults.validation_results_store_name, "validations"),
            ):
                defaults.stores[name]["store_backend"] = {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(root / sub),
                }
            project_config = DataContextConfig(
                store_backend_defaults=defaults,
                data_docs_sites={
                    SITE_NAME: {
                        "class_name": "SiteBuilder",
                        "show_how_to_buttons": False,  # no GX Cloud advertising in an auditor's site
                        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(site)},
                        "site_index_builder": {
                            "class_name": "DefaultSiteIndexBuilder",
                            "validation_results_limit": INDEX_RUNS,
                        },
                        "site_section_builders": {"profiling": "None"},  # we never profile data
                    }
                },
                analytics_enabled=False,
                progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
            )
            _contexts[(root, site)] = gx.get_context(mode="ephemeral", project_config=project_config)
        return _contexts[(root, site)]


@contextlib.contextmanager
def owner_only(*trees: Path):
    """Write under umask 077, then make every directory of ``trees`` 0700 and every
    file 0600. The umask is the process's: one build at a time holds ``_lock``, and
    other threads of the process create only owner-only files meanwhile."""
    old = os.umask(0o077)
    try:
        for tree in trees:
            tree.mkdir(parents=True, exist_ok=True)
        yield
    finally:
        os.umask(old)
        for tree in trees:
            restrict(tree)


def restrict(tree: Path) -> None:
    """0700 for ``tree`` and its directories, 0600 for its files (symlinks untouched)."""
    if not tree.exists():
        return
    tree.chmod(0o700)
    for dirpath, dirnames, filenames in os.walk(tree):
        for d in dirnames:
            p = Path(dirpath, d)
            if not p.is_symlink():
                p.chmod(0o700)
        for f in filenames:
            p = Path(dirpath, f)
            if not p.is_symlink():
                p.chmod(0o600)


@contextlib.contextmanager
def _site_lock(site: Path):
    """One build at a time per site (two processes rewriting the index interleave)."""
    site.mkdir(parents=True, exist_ok=True)
    with open(site / ".build.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(summaries: Iterable, *, root: Path | None = None, site: Path | None = None) -> dict:
    """Add the validation runs of ``summaries`` (``gx_runner.ValidationSummary``,
    validated in this process) to the site and rebuild its index. Returns
    ``{"index": path, "url": ..., "runs": n, "seconds": s}``. The site is GX's: runs
    of another engine (dbt source freshness) are left out (the audit schema keeps
    them), and a list of only those builds nothing."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    from healthops.quality.gx_context import get_context
    from healthops.quality.rules import GX_ENGINE

    t0 = time.perf_counter()
    summaries = [s for s in summaries if getattr(s, "engine", GX_ENGINE) == GX_ENGINE]
    site = (site or site_dir()).resolve()
    if not summaries:
        index = site / "index.html"
        return {
            "index": str(index),
            "url": site_url() if site == site_dir().resolve() else index.as_uri(),
            "runs": 0,
            "seconds": round(time.perf_counter() - t0, 3),
        }
    source = get_context()
    docs = docs_context(root, site)
    wanted = {(s.suite_name, s.run_at) for s in summaries}
    with _lock:
        keys = [
            k
            for k in source.validation_results_store.list_keys()
            if (k.expectation_suite_identifier.name, k.run_id.run_time) in wanted
        ]
        if len(keys) != len(wanted):
            raise LookupError(
                f"Data Docs: {len(wanted)} validation runs given, {len(keys)} found in this "
                "process's GX context (validate and build in the same process)"
            )
        suite_ids = [ExpectationSuiteIdentifier(name) for name in sorted({s.suite_name for s in summaries})]
        root = (root or store_dir()).resolve()
        with owner_only(root, site):
            for key in keys:
                result = evidence.redact_validation_result(source.validation_results_store.get(key))
                docs.validation_results_store.set(key, result)
            for sid in suite_ids:
                docs.expectations_store.add_or_update(sid, source.suites.get(sid.name))
            with _site_lock(site):
                docs.build_data_docs(site_names=[SITE_NAME], resource_identifiers=[*keys, *suite_ids])
    index = site / "index.html"
    seconds = time.perf_counter() - t0
    log.info("Data Docs: %d validation run(s) added to %s (%.2fs)", len(keys), index, seconds)
    return {
        "index": str(index),
        "url": site_url() if site == site_dir().resolve() else index.as_uri(),
        "runs": len(keys),
        "seconds": round(seconds, 3),
    }
