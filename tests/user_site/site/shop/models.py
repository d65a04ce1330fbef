"""A catalogue of products, orders of them, and the receipt the confirmation task writes."""

from django.db import models


class Product(models.Model):
    name = models.CharField(max_length=100)
    price_cents = models.PositiveIntegerField()

    def __str__(self):
        return self.name


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders")
    quantity = models.PositiveIntegerField(default=1)
    confirmed = models.BooleanField(default=False)

    def __str__(self):
        return f"{self.quantity} x {self.product}"


class Receipt(models.Model):
    order = models.OneToOneField(Order, on_delete=models.CASCADE)
    total_cents = models.PositiveIntegerField()

    def __str__(self):
        return f"receipt for order {self.order_id}"
