"""The measured views."""

from __future__ import annotations

from django.urls import path

from benchmarks.project import views

urlpatterns = [
    path("ping", views.ping),
    path("db", views.db),
    path("enqueue", views.enqueue),
    path("queries", views.queries),
]
