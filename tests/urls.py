"""URLs of the test project: the admin and the test app's views."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("tests.testapp.urls")),
]
