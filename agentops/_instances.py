"""A decorated class: one span per instance, covering the work done on it.

``@agent class Researcher`` (or any other kind but the trace kinds) gives, as
in AgentOps, one agent span per instance:

* constructing an instance inside a trace opens its span ``"Researcher.agent"``
  (``name=`` renames it), a child of the caller's current span, with the
  constructor's arguments as its input; the constructor runs inside it;
* the public methods defined on the class (and ``__call__``), decorated or not,
  run inside that span when called in the same trace while it is open: a
  decorated method's span, and the LLM calls of an undecorated one, are its
  children;
* it ends when the span it was opened in ends, when the instance is garbage
  collected, or when agentops shuts down, whichever comes first; its end time
  is the end of the last call made on the instance, so the recorded duration
  does not depend on when any of that happens.

Where there is no such span to join (the instance was built outside any
trace, is used in another trace or after its span ended, or the method is a
class or static method), the outermost call into the class gets a span of its
own, ``"Researcher.search.agent"``, standing in for it. Calls the class makes
on itself inside either kind of span open no further one.

Unlike AgentOps, building an instance never changes the caller's current
context: there, the agent span stays current in the building thread until the
instance is collected, so unrelated later work nests under it. With
``@trace``/``@session`` on a class, each outermost call starts a trace.
"""

from __future__ import annotations

import collections
import functools
import inspect
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry import context as context_api
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Span

from agentops._guard import capture_internal_exceptions
from agentops._lifecycle import EXIT_CLOSE_OPEN_SPANS, FORK_INTEGRATIONS, on_exit, on_fork_child
from agentops._wrappers import PASS, Enter, Run, Traced, active, function_of, wrap_function

#: Context key: the instance (its ``id``) whose span, or stand-in span, the context is inside.
_KEY = context_api.create_key("agentops-instance")


class _SpanRun(Run, Protocol):
    span: Span
    ctx: Context


#: Builds a span run: ``(spec, instance, args, kwargs, marker) -> run``.
MakeRun = Callable[[Any, Any, tuple[Any, ...], dict[str, Any], tuple[str, Any]], _SpanRun]
#: Builds a spec: ``(function, entity name) -> spec``.
MakeSpec = Callable[[Any, str], Any]


class _Member(Traced):
    """The wrapper of a decorated class's method (never wrapped twice)."""


class _Life:
    """An instance's open span."""

    __slots__ = ("ended", "key", "last_ns", "parent", "span", "trace_id")

    def __init__(self, key: int, span: Span, parent: tuple[int, int]) -> None:
        self.key = key
        self.span = span
        self.parent = parent
        self.trace_id = span.get_span_context().trace_id
        self.last_ns = time.time_ns()
        self.ended = False

    def touch(self) -> None:
        self.last_ns = time.time_ns()

    def end(self, limit_ns: int | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        end_ns = self.last_ns if limit_ns is None else min(self.last_ns, limit_ns)
        with capture_internal_exceptions("ending an instance span"):
            start_ns = getattr(self.span, "start_time", None) or 0
            self.span.end(end_time=max(end_ns, start_ns))


# Reentrant: ending a span runs the span hooks, which may come back here.
_lock = threading.RLock()
#: Open instance spans by ``id`` of the instance.
_lives: dict[int, _Life] = {}
#: The instances whose span is a child of a span, by that span's (trace id, span id).
_by_parent: dict[tuple[int, int], set[int]] = {}
#: The spans of instances garbage-collected since they were last ended (see :func:`_collected`).
_collected_lives: collections.deque[_Life] = collections.deque()


def _collected(life: _Life) -> None:
    """An instance was garbage-collected: its span is to end.

    A finalizer runs wherever the collector happens to run, possibly while
    this thread holds a lock of ours or of an exporter's; so it only notes
    the span (an atomic append), which ends at the next span hook or the next
    decorated instance (the end time is the last call's anyway).
    """
    _collected_lives.append(life)


def _end_collected() -> None:
    while _collected_lives:
        life = _collected_lives.popleft()
        with _lock:
            if _lives.get(life.key) is life:
                del _lives[life.key]
            siblings = _by_parent.get(life.parent)
            if siblings is not None:
                siblings.discard(life.key)
                if not siblings:
                    del _by_parent[life.parent]
        life.end()


def end_children(span: ReadableSpan) -> None:
    """End the instance spans opened inside ``span``, which just ended, and those collected (a span hook)."""
    if _collected_lives:
        _end_collected()
    if not _by_parent:
        return
    context = span.get_span_context()
    if context is None:
        return
    with _lock:
        keys = _by_parent.pop((context.trace_id, context.span_id), None)
        lives = [life for life in (_lives.pop(key, None) for key in keys or ()) if life is not None]
    for life in lives:
        life.end(span.end_time)


def end_all() -> None:
    """End every instance span still open (at exit and ``shutdown()``, before the traces end)."""
    _end_collected()
    with _lock:
        lives = list(_lives.values())
        _lives.clear()
        _by_parent.clear()
    for life in lives:
        life.end()


def _forget_all_in_child() -> None:
    # The parent process ends and exports them; the child only forgets them.
    global _lock
    _lock = threading.RLock()
    for life in _lives.values():
        life.ended = True
    _lives.clear()
    _by_parent.clear()
    _collected_lives.clear()


on_exit(end_all, EXIT_CLOSE_OPEN_SPANS)
on_fork_child(_forget_all_in_child, FORK_INTEGRATIONS)


def _adopt(instance: Any, span: Span) -> None:
    """Keep ``instance``'s span open until it is no longer needed (see the module docstring)."""
    parent = getattr(span, "parent", None)
    if parent is None or not span.is_recording():
        span.end()
        return
    key = id(instance)
    life = _Life(key, span, (parent.trace_id, parent.span_id))
    try:
        finalizer = weakref.finalize(instance, _collected, life)
    except TypeError:  # no weak references (__slots__ without __weakref__): a span for the constructor only
        life.end()
        return
    finalizer.atexit = False  # ended at exit, before the flush, by end_all()
    with _lock:
        _lives[key] = life
        _by_parent.setdefault(life.parent, set()).add(key)


def _wrap_init(cls: type, spec: Any, make_run: MakeRun) -> None:
    original = cls.__init__  # type: ignore[misc]  # the class attribute, not an instance's

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if _collected_lives:  # first: a collected instance's id may be this one's now
            _end_collected()
        key = id(self)
        if (
            not active()
            or context_api.get_value(_KEY) == key  # a decorated base class's constructor, inside ours
            or key in _lives
            or not trace_api.get_current_span().is_recording()  # outside any trace: no instance span
        ):
            original(self, *args, **kwargs)
            return
        run = make_run(spec, self, args, kwargs, (_KEY, key))
        token = run.attach()
        try:
            original(self, *args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
        with capture_internal_exceptions("opening an instance span"):
            _adopt(self, run.span)

    cls.__init__ = __init__  # type: ignore[misc]


def _member_opener(spec: Any, make_run: MakeRun) -> Callable[[Any, tuple[Any, ...], dict[str, Any]], Run]:
    def open_run(instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
        # A static method has no instance: its calls are marked by the method itself.
        key = id(instance) if instance is not None else id(spec)
        ctx = context_api.get_current()
        if context_api.get_value(_KEY, ctx) == key:
            return PASS
        life = _lives.get(key) if instance is not None and not inspect.isclass(instance) else None
        if life is not None and not life.ended:
            if trace_api.get_current_span(ctx).get_span_context().trace_id == life.trace_id:
                inside = context_api.set_value(_KEY, key, trace_api.set_span_in_context(life.span, ctx))
                return Enter(inside, life.touch)
        return make_run(spec, instance, args, kwargs, (_KEY, key))

    return open_run


def decorate_class(cls: type, name: str | None, make_spec: MakeSpec, make_run: MakeRun, *, per_instance: bool) -> type:
    """Give ``cls`` its instance spans and its methods their place in them (see the module docstring).

    Properties, private and inherited methods are left alone. The class itself
    is returned, so ``isinstance`` and subclassing are unaffected.

    Args:
        cls: The class.
        name: The name given to the decorator (the class's name otherwise).
        make_spec: Builds the spec of a span from a function and an entity name.
        make_run: Builds a span run from a spec.
        per_instance: False for the trace kinds: each outermost call starts a trace.

    Returns:
        ``cls``.
    """
    owner = name or cls.__name__
    for attr, value in list(vars(cls).items()):
        if attr.startswith("_") and attr != "__call__":
            continue
        if isinstance(value, _Member) or isinstance(getattr(value, "__func__", None), _Member):
            continue
        if isinstance(value, staticmethod | classmethod) or inspect.isfunction(value):
            method_name = function_of(value).__name__
            spec = make_spec(value, f"{owner}.{method_name}")
            setattr(cls, attr, wrap_function(value, _member_opener(spec, make_run), wrapper_type=_Member))
    if per_instance:
        _wrap_init(cls, make_spec(cls.__init__, owner), make_run)  # type: ignore[misc]
    return cls
