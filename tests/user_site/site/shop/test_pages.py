"""The shop's pytest tests (pytest-django)."""

import json
import urllib.request

import pytest

from shop.isolation import rows_in_the_database
from shop.models import Order, Product, Receipt
from shop.tasks import confirm_order


@pytest.fixture
def lamp(db):
    return Product.objects.create(name="Lamp", price_cents=2500)


def test_the_health_page_needs_no_database(client):
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.content == b"ok"


def test_the_catalogue_lists_the_products(client, lamp):
    assert client.get("/products/").json() == [{"id": lamp.pk, "name": "Lamp", "price_cents": 2500}]


@pytest.mark.django_db
def test_an_order_is_confirmed_when_its_transaction_commits(client, lamp, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/orders/", {"product": lamp.pk, "quantity": 2})
    assert response.status_code == 201
    assert Order.objects.get(pk=response.json()["id"]).receipt.total_cents == 5000


@pytest.mark.django_db
def test_the_confirmation_task_writes_a_receipt(lamp):
    order = Order.objects.create(product=lamp, quantity=3)
    assert Receipt.objects.get(pk=confirm_order.delay(order.pk).get()).total_cents == 7500


@pytest.mark.django_db(transaction=True)
def test_only_this_tests_rows_are_in_the_database(client):
    chair = Product.objects.create(name="Chair", price_cents=4000)
    assert client.post("/orders/", {"product": chair.pk}).status_code == 201
    assert rows_in_the_database() == {"shop.Product": 1, "shop.Order": 1, "shop.Receipt": 1}


def test_the_live_server_serves_the_catalogue(live_server):
    Product.objects.create(name="Desk", price_cents=12000)
    with urllib.request.urlopen(f"{live_server.url}/products/", timeout=10) as response:
        assert [product["name"] for product in json.load(response)] == ["Desk"]
