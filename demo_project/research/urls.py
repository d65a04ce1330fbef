"""URLs of the research assistant."""

from __future__ import annotations

from django.urls import path

from demo_project.research import views

app_name = "research"

urlpatterns = [
    path("", views.ask, name="ask"),
    path("inquiries/<int:pk>/", views.inquiry, name="inquiry"),
    path("stream/", views.stream, name="stream"),
]
