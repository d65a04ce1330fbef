"""Process identity on spans, the user of a request trace, and indexes for the list's sorts and searches.

Safe on big tables: every new column is nullable or has a constant
``db_default`` (PostgreSQL adds it without rewriting the table), and on
PostgreSQL every index is built ``CONCURRENTLY`` (so the migration is not
atomic), without locking out the writer.

The substring searches use trigram GIN indexes of ``pg_trgm`` on PostgreSQL.
They are built only where the extension is installed or this role may install
it (``pg_trgm`` is a trusted extension: a database owner may, since
PostgreSQL 13); otherwise the migration says so and goes on, and the searches
still work, by scanning. ``CREATE EXTENSION pg_trgm`` by a superuser and
``migrate agentops_django 0003`` then ``migrate`` add them later.
"""

import logging

import django.db.models.deletion
from django.db import DatabaseError, migrations, models

logger = logging.getLogger("agentops_django.migrations")

#: (index name, table, indexed expression): the trigram indexes of the substring searches.
TRIGRAM_INDEXES = (
    ("agentops_trace_name_trgm", "agentops_django_trace", "UPPER(name::text)"),
    ("agentops_trace_tags_trgm", "agentops_django_trace", "tags_text"),
    ("agentops_trace_procs_trgm", "agentops_django_trace", "processes_text"),
    ("agentops_span_name_trgm", "agentops_django_span", "UPPER(name::text)"),
)


class AddIndexConcurrently(migrations.AddIndex):
    """``AddIndex``, built ``CONCURRENTLY`` on PostgreSQL so the writer is never locked out."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.execute(self.index.create_sql(model, schema_editor, concurrently=True))
        return None


def _trigram_available(cursor) -> bool:
    """Whether ``pg_trgm`` is installed, installing it if this role may."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if cursor.fetchone():
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    if not cursor.fetchone():
        return False
    try:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as exc:  # no privilege: the searches scan instead
        logger.warning("agentops_django: pg_trgm not installed (%s); substring searches will scan", exc)
        return False
    return True


def add_trigram_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if not _trigram_available(cursor):
            return
        for name, table, expression in TRIGRAM_INDEXES:
            try:
                cursor.execute(
                    f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} USING gin ({expression} gin_trgm_ops)"
                )
            except DatabaseError as exc:  # e.g. the extension in a schema not on the search path
                logger.warning("agentops_django: trigram index %s not created: %s", name, exc)
                # An interrupted CONCURRENTLY build leaves an invalid index behind.
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


def drop_trigram_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name, _table, _expression in TRIGRAM_INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("agentops_django", "0003_unpriced_calls_and_otel_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="span",
            name="process",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="agentops_django.writerstats",
            ),
        ),
        migrations.AddField(
            model_name="trace",
            name="processes_text",
            field=models.CharField(blank=True, db_default="", default="", max_length=1024),
        ),
        migrations.AddField(
            model_name="trace",
            name="user_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="trace",
            name="username",
            field=models.CharField(blank=True, db_default="", default="", max_length=150),
        ),
        migrations.AddField(
            model_name="writerstats",
            name="pool_index",
            field=models.IntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="writerstats",
            name="role",
            field=models.CharField(blank=True, db_default="", default="", max_length=16),
        ),
        migrations.AddField(
            model_name="writerstats",
            name="service_name",
            field=models.CharField(blank=True, db_default="", default="", max_length=255),
        ),
        migrations.AddField(
            model_name="writerstats",
            name="worker_node",
            field=models.CharField(blank=True, db_default="", default="", max_length=255),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["-duration_ms", "-id"], name="agentops_trace_by_duration"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["-span_count", "-id"], name="agentops_trace_by_spans"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["-error_count", "-id"], name="agentops_trace_by_errors"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["-total_tokens", "-id"], name="agentops_trace_by_tokens"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["-cost", "-id"], name="agentops_trace_by_cost"),
        ),
        AddIndexConcurrently(
            model_name="trace",
            index=models.Index(fields=["username", "-started_at"], name="agentops_trace_user"),
        ),
        migrations.RunPython(add_trigram_indexes, drop_trigram_indexes, elidable=False),
    ]
