"""Views the Django tests call; each test module adds what it needs to views.py."""

from __future__ import annotations

from django.urls import path

from tests.testapp import views

urlpatterns = [
    path("ping/", views.ping, name="ping"),
]
