"""The question form."""

from __future__ import annotations

from django import forms


class AskForm(forms.Form):
    question = forms.CharField(
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "How does a chord know its group is done?", "autofocus": True}),
    )
