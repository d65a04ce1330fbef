"""The shop's pages: a health check, the catalogue, and placing an order."""

from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_POST

from shop.models import Order, Product
from shop.tasks import confirm_order


def health(request):
    return HttpResponse("ok")


def catalogue(request):
    products = Product.objects.order_by("name").values("id", "name", "price_cents")
    return JsonResponse(list(products), safe=False)


@require_POST
def place_order(request):
    product = get_object_or_404(Product, pk=request.POST["product"])
    order = Order.objects.create(product=product, quantity=int(request.POST.get("quantity", 1)))
    transaction.on_commit(lambda: confirm_order.delay(order.pk))
    return JsonResponse({"id": order.pk}, status=201)
