"""URLs of the shop."""

from django.urls import path

from shop import views

urlpatterns = [
    path("health/", views.health),
    path("products/", views.catalogue),
    path("orders/", views.place_order),
]
