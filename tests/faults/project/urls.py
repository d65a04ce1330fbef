"""URLs of the fault project: the admin, the test app's views and the fault views."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from tests.faults.project import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("work/", views.work, name="faults-work"),
    path("slow/", views.slow, name="faults-slow"),
    path("here/", views.echo_headers, name="faults-here"),
    path("enqueue/", views.enqueue, name="faults-enqueue"),
    path("", include("tests.testapp.urls")),
]
