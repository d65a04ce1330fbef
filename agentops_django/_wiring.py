"""Process start-up: initialise the SDK, install the database writer and the middleware, connect Celery.

:func:`setup` runs from :meth:`agentops_django.apps.AgentOpsConfig.ready`,
once per process; a forked child (Celery prefork, gunicorn ``--preload``)
inherits the result and re-creates only the writer's queue and thread.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from django.conf import settings
from django.core.signals import got_request_exception, setting_changed
from django.dispatch import receiver

import agentops
from agentops.integrations.scope import capture_internal_exceptions
from agentops.semconv import ProcessRole
from agentops_django import _process
from agentops_django.conf import MIDDLEWARE_PATH, get_config, resolve_exporters

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_done = False
#: Whether setup() initialised the SDK in this process (ENABLED was true).
_initialised = False
#: The database writer setup() added to the SDK, if it did.
_writer: Any = None

#: ``AGENTOPS`` settings passed to ``agentops.init()`` under the same name (``None`` leaves the SDK's default).
_INIT_OPTIONS = (
    "capture_content",
    "redact_keys",
    "max_payload_size",
    "service_name",
    "default_tags",
    "instrument_llm_calls",
)


def setup() -> None:
    """Wire agentops into this process; only the first call does anything.

    With ``AGENTOPS["ENABLED"]`` false nothing is installed. Otherwise:
    ``agentops.init(auto_start_session=False, ...)`` with the options of the
    ``AGENTOPS`` setting, the database writer added as a span processor
    (except while a test suite runs, see ``WRITE_DURING_TESTS``), the
    middleware put first in ``settings.MIDDLEWARE`` (unless listed already),
    and Celery's signals connected when Celery is installed.
    """
    global _done
    with _lock:
        if _done:
            return
        _done = True
    with capture_internal_exceptions("agentops_django setup"):
        config = get_config()
        if not config.enabled:
            logger.info("agentops_django: AGENTOPS['ENABLED'] is false; nothing traced")
            return
        given = {name: getattr(config, name) for name in _INIT_OPTIONS}
        options: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
        if "service_name" not in options and not os.environ.get("AGENTOPS_SERVICE_NAME"):
            project = _process.default_service_name(getattr(settings, "SETTINGS_MODULE", None))
            if project:
                options["service_name"] = project
        options["resource_attributes"] = _process.resource_attributes()
        agentops.init(auto_start_session=False, exporters=resolve_exporters(config.exporters), **options)
        global _initialised
        _initialised = True
        if config.running_tests and not config.write_during_tests:
            logger.debug("agentops_django: a test run: spans are kept in memory, not written to the database")
        apply_writer_setting()
        install_middleware()
        connect_celery()
        # agentops.validate_trace_spans() also finds spans other processes stored.
        agentops.add_trace_source(stored_spans, covers_this_process=config.writes_to_database)


def apply_writer_setting() -> None:
    """Add or remove the database writer as the ``AGENTOPS`` setting now says.

    Runs at set-up and whenever a test changes ``AGENTOPS`` (``override_settings``),
    so ``ENABLED``, ``DATABASE_WRITER`` and ``WRITE_DURING_TESTS`` take effect at
    once for requests, Celery tasks and the writer alike.
    """
    global _writer
    if not _initialised or not agentops.is_initialized():
        return
    from agentops_django.writer import get_processor

    wanted = get_config().writes_to_database
    # While the writer stores this process's spans, the SDK's own record of them is not needed.
    agentops.add_trace_source(stored_spans, covers_this_process=wanted)
    if wanted and (_writer is None or _writer._stopping):
        _writer = get_processor()
        agentops.add_span_processor(_writer)
    elif not wanted and _writer is not None:
        agentops.remove_span_processor(_writer)
        _writer.force_flush(1000)  # what it already holds still goes where it was meant to
        _writer = None


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "AGENTOPS":
        with capture_internal_exceptions("agentops_django setting change"):
            apply_writer_setting()


def install_middleware() -> bool:
    """Put the middleware first in ``settings.MIDDLEWARE`` unless it is listed already.

    Also connects Django's ``got_request_exception``, which tells the
    middleware of exceptions raised by other middleware.

    Returns:
        True if it was added.
    """
    from agentops_django.middleware import on_request_exception

    got_request_exception.connect(on_request_exception, dispatch_uid="agentops_django.middleware")
    current = getattr(settings, "MIDDLEWARE", None)
    if current is None or MIDDLEWARE_PATH in current:
        return False
    settings.MIDDLEWARE = [MIDDLEWARE_PATH, *current]
    return True


def connect_celery() -> bool:
    """Connect the Celery signal handlers if Celery is installed.

    Returns:
        True if they were connected.
    """
    try:
        import celery  # noqa: F401
    except ImportError:
        return False
    try:
        from celery import signals

        from agentops_django import celery as celery_tracing
    except ImportError:
        logger.debug("agentops_django: Celery signal handlers not available", exc_info=True)
        return False
    celery_tracing.connect()
    # A prefork child sets itself up again (its writer thread, its state).
    signals.worker_process_init.connect(_on_worker_process_init, weak=False, dispatch_uid=_WORKER_INIT_UID)
    # The process identity the writer stores with every span.
    signals.celeryd_init.connect(_on_celeryd_init, weak=False, dispatch_uid=f"{__name__}.celeryd_init")
    signals.worker_init.connect(_on_worker_init, weak=False, dispatch_uid=f"{__name__}.worker_init")
    signals.beat_init.connect(_on_beat_init, weak=False, dispatch_uid=f"{__name__}.beat_init")
    return True


_WORKER_INIT_UID = "agentops_django._wiring.worker_process_init"


def _on_celeryd_init(sender: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery celeryd_init"):
        _process.set_role(ProcessRole.WORKER, worker_node=str(sender) if sender else None)


def _on_worker_init(sender: Any = None, **_: Any) -> None:
    with capture_internal_exceptions("celery worker_init"):
        node = getattr(sender, "hostname", None)
        _process.set_role(ProcessRole.WORKER, worker_node=str(node) if node else None)


def _on_beat_init(**_: Any) -> None:
    with capture_internal_exceptions("celery beat_init"):
        _process.set_role(ProcessRole.BEAT)


def _on_worker_process_init(**_: Any) -> None:
    with capture_internal_exceptions("celery worker_process_init"):
        from billiard.process import current_process

        index = getattr(current_process(), "index", None)
        _process.set_role(ProcessRole.WORKER, pool_index=index if isinstance(index, int) else None)
        if settings.configured:  # not a Django worker: nothing of ours to set up
            setup()


def reset() -> None:
    """Let the next :func:`setup` run again (for tests, after ``agentops`` was reset)."""
    global _done, _initialised, _writer
    with _lock:
        _done = False
        _initialised = False
        _writer = None


def stored_spans(trace_id: str) -> list[dict[str, Any]] | None:
    """A trace's spans as stored in the database, for ``agentops.validate_trace_spans()``."""
    from agentops_django.models import Span
    from agentops_django.routers import database

    try:
        rows = list(Span.objects.using(database()).filter(trace_id=trace_id))
    except RuntimeError:
        # A test without database access (pytest-django's blocker): nothing stored to read.
        return None
    return [
        {
            "span_id": row.span_id,
            "parent_span_id": row.parent_span_id or None,
            "span_name": row.name,
            "span_attributes": row.attributes if isinstance(row.attributes, dict) else {},
            "status": row.status,
        }
        for row in rows
    ] or None
