from __future__ import annotations

from django import forms

from apps.rubrics.models import Mode


class RubricCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(
        max_length=60, required=False,
        help_text="Used in addresses and on the command line; from the name if empty.",
    )
    mode = forms.ChoiceField(choices=Mode.choices, widget=forms.RadioSelect, initial=Mode.POINTWISE)
    description = forms.CharField(
        label="Task being judged", required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the model under training is asked to do, in the judge's words.",
    )


class RubricSettingsForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(
        max_length=60, help_text="Used in addresses, files and on the command line."
    )
    mode = forms.ChoiceField(
        choices=Mode.choices, widget=forms.RadioSelect,
        help_text="Fixed once a version is published. Changing it replaces the criteria and the "
                  "prompt with the new mode's defaults.",
    )
    description = forms.CharField(
        label="Task being judged", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    pass_threshold = forms.FloatField(
        min_value=0, max_value=1, label="Pass threshold",
        help_text="A reward at or above this counts as a pass (used by calibration and export).",
    )

    def __init__(self, *args, mode_fixed: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if mode_fixed:  # published versions exist: labels and runs depend on the mode
            del self.fields["mode"]


class PromptForm(forms.Form):
    system_template = forms.CharField(
        label="System message", required=False, widget=forms.Textarea(attrs={"rows": 5})
    )
    user_template = forms.CharField(
        label="User message", required=False, widget=forms.Textarea(attrs={"rows": 14})
    )


class PublishForm(forms.Form):
    note = forms.CharField(
        label="What changed and why", widget=forms.Textarea(attrs={"rows": 3}), max_length=4000
    )


class RubricImportForm(forms.Form):
    file = forms.FileField(label="Rubric YAML file", required=False)
    # strip=False: error messages give line numbers, which must match the text as pasted.
    text = forms.CharField(label="…or paste YAML", required=False, strip=False,
                           widget=forms.Textarea(attrs={"rows": 10, "class": "mono",
                                                        "spellcheck": "false"}))
    publish = forms.BooleanField(required=False, label="Publish it as a new version")
    note = forms.CharField(required=False, max_length=4000, label="Note for the published version")


def version_choices(versions) -> list[tuple[str, str]]:
    """Published versions as a select's choices, for the forms that start work on one."""
    return [(str(v.pk), f"{v.rubric.name} v{v.number} ({v.rubric.get_mode_display()})")
            for v in versions]
