"""Start-up wiring: INSTALLED_APPS is all a user adds; ready() does the rest, once."""

from __future__ import annotations

from typing import Any

import agentops
import agentops.testing
from agentops.integrations import scope
from agentops_django import _wiring as setup
from agentops_django.conf import MIDDLEWARE_PATH
from agentops_django.writer import DatabaseSpanProcessor, get_processor


def test_ready_put_the_middleware_first_and_only_once() -> None:
    from django.conf import settings

    assert settings.MIDDLEWARE[0] == MIDDLEWARE_PATH
    assert settings.MIDDLEWARE.count(MIDDLEWARE_PATH) == 1


def test_installing_the_middleware_again_changes_nothing(settings: Any) -> None:
    before = list(settings.MIDDLEWARE)
    assert setup.install_middleware() is False
    assert settings.MIDDLEWARE == before


def test_middleware_placed_by_the_user_is_left_where_it_is(settings: Any) -> None:
    settings.MIDDLEWARE = ("django.middleware.security.SecurityMiddleware", MIDDLEWARE_PATH)
    assert setup.install_middleware() is False
    assert list(settings.MIDDLEWARE) == ["django.middleware.security.SecurityMiddleware", MIDDLEWARE_PATH]


def test_middleware_is_put_first_when_missing(settings: Any) -> None:
    settings.MIDDLEWARE = ("django.middleware.security.SecurityMiddleware",)
    assert setup.install_middleware() is True
    assert settings.MIDDLEWARE == [MIDDLEWARE_PATH, "django.middleware.security.SecurityMiddleware"]


def test_setup_initialises_the_sdk_without_a_session_and_adds_the_writer(configure_agentops: Any) -> None:
    configure_agentops(CAPTURE_CONTENT=False, MAX_PAYLOAD_SIZE=1000)
    assert agentops.is_initialized()
    assert agentops.active_traces() == []  # no automatic session
    assert scope.capture_content() is False
    assert len(scope.serialize("x" * 5000)) < 1100  # MAX_PAYLOAD_SIZE reached the SDK
    writers = [p for p in agentops.span_processors() if isinstance(p, DatabaseSpanProcessor)]
    assert writers == [get_processor()]


def test_setup_runs_once_per_process(configure_agentops: Any) -> None:
    configure_agentops()
    writer = get_processor()
    setup.setup()
    setup.setup()
    assert [p for p in agentops.span_processors() if isinstance(p, DatabaseSpanProcessor)] == [writer]


def test_writer_can_be_turned_off(configure_agentops: Any) -> None:
    configure_agentops(DATABASE_WRITER=False)
    assert agentops.is_initialized()
    assert not [p for p in agentops.span_processors() if isinstance(p, DatabaseSpanProcessor)]


def test_disabled_means_no_sdk(configure_agentops: Any) -> None:
    agentops.testing.reset()
    configure_agentops(ENABLED=False)
    assert not agentops.is_initialized()


def test_celery_signal_handlers_are_connected_when_celery_is_installed(monkeypatch: Any) -> None:
    from agentops_django import celery as celery_signals

    calls: list[bool] = []
    monkeypatch.setattr(celery_signals, "connect", lambda: calls.append(True))
    assert setup.connect_celery() is True
    assert calls == [True]
