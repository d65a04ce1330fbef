"""Pages of the research assistant: ask, see the result, stream an answer.

Each response carries the id of the trace it was recorded in (the
``X-Trace-Id`` header, and on the result page a link to the admin), read from
the current OpenTelemetry span: the view knows nothing else of agentops.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods
from opentelemetry import trace

from demo_project.research import agent, corpus, llm
from demo_project.research.forms import AskForm
from demo_project.research.models import Digest, Inquiry

TRACE_HEADER = "X-Trace-Id"


def current_trace_id() -> str:
    """The hex id of the trace this code runs in, or ``""`` when nothing is traced."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else ""


@require_http_methods(["GET", "POST"])
def ask(request: HttpRequest) -> HttpResponse:
    """The home page: ask a question; the agent answers and queues its background work."""
    form = AskForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        inquiry = Inquiry.objects.create(question=form.cleaned_data["question"], trace_id=current_trace_id())
        inquiry.answer = agent.research(inquiry)
        inquiry.save(update_fields=["answer"])
        response = redirect("research:inquiry", pk=inquiry.pk)
        response[TRACE_HEADER] = inquiry.trace_id
        return response
    context = {
        "form": form,
        "recent": Inquiry.objects.all()[:8],
        "digest": Digest.objects.first(),
        "topics": list(corpus.DOCUMENTS),
    }
    return render(request, "research/ask.html", context)


@require_GET
def inquiry(request: HttpRequest, pk: int) -> HttpResponse:
    """One question's answer, with the background results as far as they have arrived."""
    item = get_object_or_404(Inquiry, pk=pk)
    return render(request, "research/inquiry.html", {"inquiry": item})


@require_GET
def stream(request: HttpRequest) -> StreamingHttpResponse | HttpResponse:
    """Stream the model's answer to ``?q=`` as plain text, as it is generated."""
    question = request.GET.get("q", "").strip()[:500]
    if not question:
        return redirect("research:ask")
    titles = corpus.search(question)
    sources = "\n\n".join(corpus.DOCUMENTS[title] for title in titles)
    deltas = llm.stream(agent.SYSTEM, f"Documents:\n{sources}\n\nQuestion: {question}")
    response = StreamingHttpResponse(deltas, content_type="text/plain; charset=utf-8")
    response[TRACE_HEADER] = current_trace_id()
    response["X-Accel-Buffering"] = "no"
    return response
