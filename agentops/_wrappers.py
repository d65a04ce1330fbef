"""How a decorated callable runs: one wrapper per kind of callable, around a *run*.

A run is what a decorator does around one call: open a span
(:mod:`agentops._decorators`), enter an agent instance's span
(:mod:`agentops._instances`), or nothing at all. The wrappers here decide
*when* it starts and ends, the same way for every decorator:

* a function's run lasts its call;
* a coroutine's starts when it is first awaited, in the awaiting context (a
  coroutine that is never awaited never starts one);
* a generator's starts at its first ``next()``, in the context the generator
  was created in, is current only while the generator's own code runs (never
  between yields, so it cannot leak into the consumer), and ends when the
  generator is exhausted, raises, is closed or is garbage-collected.

Every wrapper first asks whether agentops is active and otherwise calls the
original untouched; the user's exceptions pass through unchanged.
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from contextvars import Token
from typing import Any, Protocol

import wrapt
from opentelemetry import context as context_api
from opentelemetry.context import Context

from agentops._state import state
from agentops._traces import step_out_of_ended_trace


class Run(Protocol):
    """One call's run: made current per step, given the result, finished once."""

    def attach(self) -> Token[Context]: ...

    def output(self, value: Any) -> None: ...

    def finish(self, exc: BaseException | None = None) -> None: ...


#: Starts the run of one call from ``(instance, args, kwargs)``; :data:`PASS` for none.
OpenRun = Callable[[Any, tuple[Any, ...], dict[str, Any]], Run]


class _Pass:
    """The run that does nothing (the call is already inside what a run would open)."""

    def attach(self) -> Token[Context]:
        return context_api.attach(context_api.get_current())

    def output(self, value: Any) -> None:
        pass

    def finish(self, exc: BaseException | None = None) -> None:
        pass


PASS: Run = _Pass()


class Enter:
    """A run that opens no span: it makes a given context current (an agent instance's span)."""

    __slots__ = ("ctx", "done", "on_finish")

    def __init__(self, ctx: Context, on_finish: Callable[[], None] | None = None) -> None:
        self.ctx = ctx
        self.on_finish = on_finish
        self.done = False

    def attach(self) -> Token[Context]:
        return context_api.attach(self.ctx)

    def output(self, value: Any) -> None:
        pass

    def finish(self, exc: BaseException | None = None) -> None:
        if not self.done:
            self.done = True
            if self.on_finish is not None:
                self.on_finish()


class Traced(wrapt.FunctionWrapper):  # type: ignore[type-arg,unused-ignore]
    """agentops' wrapper type, so that decorating a class can tell decorated methods apart."""

    def __reduce_ex__(self, protocol: Any) -> Any:
        # Pickled by reference like the plain function it wraps, so a decorated
        # function can still be sent to a multiprocessing pool or a process
        # executor (wrapt's proxies refuse to be pickled by value).
        return self.__qualname__


def active() -> bool:
    """Whether agentops is initialised (wrappers call the original untouched otherwise)."""
    return state.config is not None


def function_of(target: Any) -> Any:
    """The plain function behind a static/class/bound method (for its signature and kind)."""
    if isinstance(target, staticmethod | classmethod | types.MethodType):
        return target.__func__
    return target


def is_traced(value: Any) -> bool:
    """Whether ``value`` (or the function of a static/class method) is decorated by agentops."""
    return isinstance(value, Traced) or isinstance(getattr(value, "__func__", None), Traced)


def _sync_wrapper(open_run: OpenRun) -> Callable[..., Any]:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not active():
            return wrapped(*args, **kwargs)
        run = open_run(instance, args, kwargs)
        if run is PASS:
            return wrapped(*args, **kwargs)
        token = run.attach()
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
            step_out_of_ended_trace()
        run.output(result)
        run.finish()
        return result

    return wrapper


def _coroutine_wrapper(open_run: OpenRun) -> Callable[..., Any]:
    async def call(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        run = open_run(instance, args, kwargs)
        if run is PASS:
            return await wrapped(*args, **kwargs)
        token = run.attach()
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            context_api.detach(token)
            step_out_of_ended_trace()
        run.output(result)
        run.finish()
        return result

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not active():
            return wrapped(*args, **kwargs)
        return call(wrapped, instance, args, kwargs)

    return wrapper


def _start_generator(
    parent: Context,
    open_run: OpenRun,
    wrapped: Callable[..., Any],
    instance: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[Run, Any]:
    """Start a generator's run in ``parent`` and create the generator inside it."""
    token = context_api.attach(parent)
    try:
        run = open_run(instance, args, kwargs)
    finally:
        context_api.detach(token)
    if run is PASS:  # its steps run where it was created, like any decorated generator's
        run = Enter(parent)
    token = run.attach()
    try:
        return run, wrapped(*args, **kwargs)
    except BaseException as exc:
        run.finish(exc)
        raise
    finally:
        context_api.detach(token)


def _generator_wrapper(open_run: OpenRun) -> Callable[..., Any]:
    def steps(
        parent: Context, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        run, gen = _start_generator(parent, open_run, wrapped, instance, args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = gen.send(sent) if thrown is None else gen.throw(thrown)
                except StopIteration as stop:
                    run.output({"yielded": count, "return": stop.value})
                    return stop.value
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    token = run.attach()
                    try:
                        gen.close()
                    finally:
                        context_api.detach(token)
                    raise
                except BaseException as exc:  # thrown in by the consumer: pass it on
                    thrown = exc
                    sent = None
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not active():
            return wrapped(*args, **kwargs)
        return steps(context_api.get_current(), wrapped, instance, args, kwargs)

    return wrapper


def _async_generator_wrapper(open_run: OpenRun) -> Callable[..., Any]:
    async def steps(
        parent: Context, wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        # As for generators (see _generator_wrapper).
        run, agen = _start_generator(parent, open_run, wrapped, instance, args, kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        count = 0
        try:
            while True:
                token = run.attach()
                try:
                    item = await (agen.asend(sent) if thrown is None else agen.athrow(thrown))
                except StopAsyncIteration:
                    run.output({"yielded": count})
                    return
                finally:
                    context_api.detach(token)
                    thrown = None
                count += 1
                try:
                    sent = yield item
                except GeneratorExit:
                    token = run.attach()
                    try:
                        await agen.aclose()
                    finally:
                        context_api.detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
                    sent = None
        except GeneratorExit:
            run.finish()
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        finally:
            run.finish()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if not active():
            return wrapped(*args, **kwargs)
        return steps(context_api.get_current(), wrapped, instance, args, kwargs)

    return wrapper


def wrap_function(target: Any, open_run: OpenRun, *, wrapper_type: type[Traced] = Traced) -> Traced:
    """Wrap a function (or static/class method) so each call runs inside ``open_run``'s run.

    Args:
        target: The callable; whether it is a coroutine or (async) generator
            function decides the wrapper.
        open_run: Called at the start of each call (see the module docstring).
        wrapper_type: :class:`Traced` or a subclass that marks the wrapper's purpose.

    Returns:
        A :class:`Traced` wrapper that keeps the target's name, docstring,
        signature, ``__wrapped__`` and kind of callable.
    """
    func = function_of(target)
    if inspect.isasyncgenfunction(func):
        wrapper = _async_generator_wrapper(open_run)
    elif inspect.iscoroutinefunction(func):
        wrapper = _coroutine_wrapper(open_run)
    elif inspect.isgeneratorfunction(func):
        wrapper = _generator_wrapper(open_run)
    else:
        wrapper = _sync_wrapper(open_run)
    return wrapper_type(target, wrapper)
