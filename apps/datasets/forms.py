from __future__ import annotations

from django import forms

from apps.datasets.models import Kind


class DatasetUploadForm(forms.Form):
    name = forms.CharField(
        max_length=120, label="Dataset name",
        help_text="A new name creates a dataset; an existing one adds the rows to it.",
    )
    kind = forms.ChoiceField(
        choices=[("", "From the rows (response, or response_a + response_b)"), *Kind.choices],
        required=False, label="Kind",
    )
    rubric = forms.ChoiceField(
        required=False, label="Rubric for labels and verdicts in the rows",
        help_text="Needed only when rows carry labels or judgments; values are checked against it.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    file = forms.FileField(label="File (.jsonl or .csv)")

    def __init__(self, *args, rubrics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rubric"].choices = [("", "The project's only rubric of this kind")] + [
            (r.slug, f"{r.name} ({r.mode})") for r in rubrics
        ]


def dataset_choices(datasets) -> list[tuple[str, str]]:
    """Datasets as a select's choices, with their kind and size."""
    return [(str(d.pk), f"{d.name} ({d.kind}, {d.item_count:,} items)") for d in datasets]
