"""The shop's tests for Django's runner (``manage.py test``); pytest-django runs them too."""

import json
import urllib.request

from django.test import LiveServerTestCase, TestCase, TransactionTestCase

from shop.isolation import rows_in_the_database
from shop.models import Order, Product, Receipt
from shop.tasks import confirm_order


class CatalogueTests(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.lamp = Product.objects.create(name="Lamp", price_cents=2500)

    def test_the_catalogue_lists_the_products(self):
        response = self.client.get("/products/")
        self.assertEqual(response.json(), [{"id": self.lamp.pk, "name": "Lamp", "price_cents": 2500}])

    def test_an_order_is_confirmed_when_its_transaction_commits(self):
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post("/orders/", {"product": self.lamp.pk, "quantity": 2})
        self.assertEqual(response.status_code, 201)
        order = Order.objects.get(pk=response.json()["id"])
        self.assertTrue(order.confirmed)
        self.assertEqual(order.receipt.total_cents, 5000)

    def test_the_confirmation_task_writes_a_receipt(self):
        order = Order.objects.create(product=self.lamp, quantity=3)
        receipt_id = confirm_order.delay(order.pk).get()
        self.assertEqual(Receipt.objects.get(pk=receipt_id).total_cents, 7500)


class CheckoutTransactionTests(TransactionTestCase):
    def test_a_committed_order_is_confirmed_by_the_task(self):
        chair = Product.objects.create(name="Chair", price_cents=4000)
        response = self.client.post("/orders/", {"product": chair.pk})
        self.assertEqual(response.status_code, 201)
        self.assertTrue(Order.objects.get().confirmed)
        self.assertEqual(Receipt.objects.get().total_cents, 4000)

    def test_the_database_holds_nothing_from_earlier_tests(self):
        self.assertEqual(rows_in_the_database(), {})


class StorefrontLiveTests(LiveServerTestCase):
    def test_the_catalogue_is_served_over_http(self):
        Product.objects.create(name="Desk", price_cents=12000)
        with urllib.request.urlopen(f"{self.live_server_url}/products/", timeout=10) as response:
            self.assertEqual([product["name"] for product in json.load(response)], ["Desk"])
