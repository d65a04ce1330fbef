"""A small Django project for the benchmarks; ``BENCH_VARIANT`` picks the tracing.

Variants: ``none`` (no tracing), ``otel`` (OpenTelemetry contrib's Django and
Celery instrumentations), ``sentry`` (sentry-sdk with tracing on) and
``agentops`` (this project, writing every span to the database).
"""
