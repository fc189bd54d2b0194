from __future__ import annotations

from django import forms

from apps.datasets.forms import dataset_choices
from apps.labeling.selection import MODES, parse_item_list
from apps.rubrics.forms import version_choices


class SessionForm(forms.Form):
    name = forms.CharField(max_length=120)
    version = forms.ChoiceField(label="Rubric version (published)")
    dataset = forms.ChoiceField(label="Dataset", help_text="Of the same kind as the rubric.")
    mode = forms.ChoiceField(choices=list(MODES.items()), initial="all", label="Items",
                             widget=forms.RadioSelect)
    sample_size = forms.IntegerField(min_value=1, required=False, label="Sample size (N)")
    seed = forms.IntegerField(initial=0, required=False, label="Sample seed")
    filter = forms.CharField(max_length=200, required=False, label="Metadata filter",
                             help_text="key=value, e.g. split=test")
    run = forms.ChoiceField(required=False, label="Judge run",
                            help_text="For “judge and humans disagree”.")
    items = forms.CharField(required=False, label="Item ids",
                            widget=forms.Textarea(attrs={"rows": 3}),
                            help_text="For “these items”: one id per line, as in the dataset.")
    overlap = forms.IntegerField(initial=1, min_value=1, max_value=50,
                                 label="Overlap (annotators per item, k)")
    claim_ttl_s = forms.IntegerField(initial=900, min_value=30, max_value=86400,
                                     label="Claim lasts (seconds)",
                                     help_text="An item left open longer returns to the pool.")
    assignees = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple,
                                          label="Annotators")

    def __init__(self, *args, versions=(), datasets=(), runs=(), members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(versions)
        self.fields["dataset"].choices = dataset_choices(datasets)
        self.fields["run"].choices = [("", "—")] + [
            (str(r.pk), f"#{r.pk} {r.name} on {r.dataset.name}") for r in runs
        ]
        self.fields["assignees"].choices = [
            (str(m.user_id), f"{m.user.username} ({m.get_role_display().lower()})")
            for m in members
        ]

    def clean(self):
        data = super().clean()
        mode = data.get("mode")
        if mode == "sample" and not data.get("sample_size"):
            self.add_error("sample_size", "Give the sample's size.")
        if mode == "filter" and "=" not in (data.get("filter") or ""):
            self.add_error("filter", "Write the filter as key=value.")
        if mode == "disagree" and not data.get("run"):
            self.add_error("run", "Choose the judge run to compare with.")
        if mode == "items" and not parse_item_list(data.get("items") or ""):
            self.add_error("items", "List the items' ids, one per line.")
        return data

    def selection(self) -> dict:
        d = self.cleaned_data
        mode = d["mode"]
        if mode == "sample":
            return {"mode": mode, "size": d["sample_size"], "seed": d.get("seed") or 0}
        if mode == "filter":
            return {"mode": mode, "filter": d["filter"].strip()}
        if mode == "disagree":
            return {"mode": mode, "run": int(d["run"])}
        if mode == "items":
            return {"mode": mode, "ids": parse_item_list(d["items"])}
        return {"mode": mode}


class SkipForm(forms.Form):
    assignment = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(max_length=300, label="Why skip this item?",
                             help_text="e.g. text missing, not my language, cannot judge")


class GoldForm(forms.Form):
    item = forms.IntegerField(widget=forms.HiddenInput)
    criterion = forms.CharField(max_length=60, widget=forms.HiddenInput)
    value = forms.CharField(max_length=64)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


MAPPING_EXAMPLE = """format: labelstudio        # or argilla
item_id: id                # where a record names its item
comment: notes             # optional: a text question kept as the comment
criteria:
  correct: {from: quality}
  safe:
    from: is_safe
    values: {"yes": 1, "no": 0}
annotators:                # optional: tool user id -> name
  10: kim
"""


class ForeignLabelsForm(forms.Form):
    """Labels from Label Studio or Argilla (docs/labeling.md, "Labels from and to other
    tools")."""

    dataset = forms.ChoiceField(label="Dataset", help_text="The items the labels belong to, "
                                                           "matched by their ids.")
    version = forms.ChoiceField(label="Rubric version (published)")
    export = forms.FileField(label="Export file", help_text="Label Studio: the JSON export. "
                             "Argilla: records saved as JSON (records.to_json).")
    mapping = forms.CharField(label="Mapping", max_length=20_000,
                              widget=forms.Textarea(attrs={"rows": 11, "spellcheck": "false"}),
                              initial=MAPPING_EXAMPLE)
    new_round = forms.BooleanField(
        required=False, label="Store labels of annotators who already labelled an item as "
                              "their next round (otherwise they are refused)")

    def __init__(self, *args, versions=(), datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(versions)
        self.fields["dataset"].choices = dataset_choices(datasets)
