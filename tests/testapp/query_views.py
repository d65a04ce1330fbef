"""Views of the SQL recording tests: an N+1 loop (sync and async), a failing query, an eager task."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.urls import path

from tests.testapp import tasks


def n_plus_one(request: HttpRequest) -> JsonResponse:
    """One query for the users, then one per user for its groups: the N+1 pattern."""
    users = list(User.objects.order_by("pk"))
    groups = {user.username: [group.name for group in user.groups.all()] for user in users}
    return JsonResponse(groups)


async def async_n_plus_one(request: HttpRequest) -> JsonResponse:
    """The same loop in an async view: the ORM runs in ``sync_to_async`` threads."""
    users = [user async for user in User.objects.order_by("pk")]
    groups = {user.username: [group.name async for group in user.groups.all()] for user in users}
    return JsonResponse(groups)


def failing_query(request: HttpRequest) -> JsonResponse:
    """A raw query the database refuses; its exception is the view's."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table_agentops")
    return JsonResponse({})


def with_eager_task(request: HttpRequest) -> JsonResponse:
    """One query of its own, then an eager task that loops over the users."""
    users = User.objects.count()
    tasks.n_plus_one.apply()
    return JsonResponse({"users": users})


urlpatterns = [
    path("n-plus-one/", n_plus_one),
    path("async-n-plus-one/", async_n_plus_one),
    path("failing/", failing_query),
    path("eager-task/", with_eager_task),
]
