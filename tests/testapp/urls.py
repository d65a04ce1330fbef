"""Views the Django tests call; each test module adds what it needs to views.py."""

from __future__ import annotations

from django.urls import include, path, re_path

from tests.testapp import views

urlpatterns = [
    path("ping/", views.ping, name="ping"),
    path("whoami/", views.whoami, name="whoami"),
    path("orders/<int:pk>/", views.order, name="order"),
    re_path(r"^legacy/(?P<year>[0-9]{4})/$", views.legacy, name="legacy"),
    path("boom/", views.boom, name="boom"),
    path("unavailable/", views.server_error, name="unavailable"),
    path("with-trace/", views.with_trace, name="with-trace"),
    path("end-all/", views.end_all, name="end-all"),
    path("stream/", views.stream, name="stream"),
    path("stream-error/", views.stream_error, name="stream-error"),
    path("async-stream/", views.async_stream, name="async-stream"),
    path("file/", views.file, name="file"),
    path("async-ping/", views.async_ping, name="async-ping"),
    path("async-boom/", views.async_boom, name="async-boom"),
    path("celery/", include("tests.testapp.celery_views")),
    path("queries/", include("tests.testapp.query_views")),
]
