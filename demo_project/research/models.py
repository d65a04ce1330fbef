"""What the assistant remembers: each question with its answer and background results, and the digests."""

from __future__ import annotations

from django.db import models


class Inquiry(models.Model):
    """One question and everything the assistant produced for it."""

    question = models.CharField(max_length=500)
    answer = models.TextField(blank=True, default="")
    #: Written by the chain (fetch → summarise → notify).
    summary = models.TextField(blank=True, default="")
    #: Written by the chord's callback from the per-chunk findings.
    report = models.TextField(blank=True, default="")
    #: The trace of the request that asked it (hex), to find it in the admin.
    trace_id = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "inquiries"

    def __str__(self) -> str:
        return self.question


class Digest(models.Model):
    """A periodic summary of recent questions, written by Celery beat's ``write_digest``."""

    text = models.TextField()
    inquiries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Digest of {self.created_at:%Y-%m-%d %H:%M}"
