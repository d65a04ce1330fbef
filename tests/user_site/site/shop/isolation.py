"""What a test may find in the database: rows migrate puts there, and nothing left by another test."""

from django.apps import apps
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType

#: Tables that migrate fills (and that a TransactionTestCase refills after flushing).
FILLED_BY_MIGRATE = {ContentType, Permission}


def rows_in_the_database():
    """Rows of every installed model but those migrate fills: {label: count}, tables with rows only."""
    counts = {}
    for model in apps.get_models():
        if model in FILLED_BY_MIGRATE:
            continue
        count = model._default_manager.count()
        if count:
            counts[model._meta.label] = count
    return counts
