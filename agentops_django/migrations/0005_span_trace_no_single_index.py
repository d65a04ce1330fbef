"""Drop the span table's index on ``trace_id`` alone (and its ``LIKE`` twin on PostgreSQL).

Both indexes came with the foreign key. The unique ``(trace_id, span_id)`` and
the ``(trace_id, started_at)`` indexes lead with ``trace_id`` and serve every
lookup by trace, so these two only cost space and a write on every insert.
The indexes are dropped by name as the database reports them: an ``AlterField``
would rebuild the whole span table on SQLite.
"""

import django.db.models.deletion
from django.db import migrations, models


def _single_trace_id_indexes(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [
        name
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == ["trace_id"]
    ]


def drop_indexes(apps, schema_editor):
    table = apps.get_model("agentops_django", "Span")._meta.db_table
    for name in _single_trace_id_indexes(schema_editor, table):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def create_index(apps, schema_editor):
    table = apps.get_model("agentops_django", "Span")._meta.db_table
    quote = schema_editor.quote_name
    name = quote("agentops_django_span_trace_id_e9b138c8")
    schema_editor.execute(f"CREATE INDEX {name} ON {quote(table)} (trace_id)")


class Migration(migrations.Migration):
    dependencies = [
        ("agentops_django", "0004_process_identity_and_search"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="span",
                    name="trace",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="spans",
                        to="agentops_django.trace",
                        to_field="trace_id",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_index)],
        ),
    ]
