"""Views used by the Django tests."""

from __future__ import annotations

import asyncio

from django.http import FileResponse, Http404, HttpResponse, JsonResponse, StreamingHttpResponse

import agentops


def ping(request):
    return HttpResponse("pong")


def whoami(request):
    """A view that looks at its user (as most pages showing one do)."""
    return HttpResponse(request.user.get_username() or "anonymous")


def order(request, pk):
    """A view behind a route with a converter: ``orders/<int:pk>/``."""
    if pk == 404:
        raise Http404("no such order")
    if request.GET.get("who"):
        return JsonResponse({"pk": pk, "user": request.user.get_username()})
    return JsonResponse({"pk": pk})


def boom(request):
    raise ValueError("the view failed")


def server_error(request):
    return HttpResponse("unavailable", status=503)


def with_trace(request):
    """Starts a trace of its own, ends it, and leaves a second one open."""
    with agentops.start_trace("inner-work", tags=["view"]):
        pass
    agentops.start_trace("left-open")
    return HttpResponse("ok")


def end_all(request):
    """``end_trace()`` without argument inside a view: ends only this request's traces."""
    agentops.start_trace("mine")
    agentops.end_trace()
    return HttpResponse("ok")


def stream(request):
    def chunks():
        yield b"one,"
        with agentops.start_trace("during-stream"):
            pass
        yield b"two"

    return StreamingHttpResponse(chunks())


def stream_error(request):
    def chunks():
        yield b"one,"
        raise RuntimeError("the stream broke")

    return StreamingHttpResponse(chunks())


def async_stream(request):
    async def chunks():
        yield b"a,"
        await asyncio.sleep(0)
        yield b"b"

    return StreamingHttpResponse(chunks())


def file(request):
    return FileResponse(open(__file__, "rb"))  # FileResponse closes it


async def async_ping(request):
    await asyncio.sleep(0)
    with agentops.start_trace("async-work"):
        await asyncio.sleep(0)
    return HttpResponse("async pong")


async def async_boom(request):
    await asyncio.sleep(0)
    raise KeyError("async failure")


def legacy(request, year):
    """A view behind a ``re_path`` pattern."""
    return HttpResponse(year)
