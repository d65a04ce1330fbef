"""Celery tasks of the shop."""

from celery import shared_task
from django.db import transaction

from shop.models import Order, Receipt


@shared_task
def confirm_order(order_id):
    """Confirm the order and write its receipt; returns the receipt's id."""
    with transaction.atomic():
        order = Order.objects.select_for_update().select_related("product").get(pk=order_id)
        order.confirmed = True
        order.save(update_fields=["confirmed"])
        receipt = Receipt.objects.create(order=order, total_cents=order.quantity * order.product.price_cents)
    return receipt.pk
