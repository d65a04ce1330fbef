"""The research assistant's models in the admin, next to the traces."""

from __future__ import annotations

from django.contrib import admin

from demo_project.research.models import Digest, Inquiry


@admin.register(Inquiry)
class InquiryAdmin(admin.ModelAdmin):
    list_display = ["question", "created_at", "notified_at", "trace_id"]
    search_fields = ["question", "trace_id"]
    readonly_fields = ["trace_id", "created_at", "notified_at"]


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = ["created_at", "inquiries"]
