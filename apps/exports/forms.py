from __future__ import annotations

from django import forms

from apps.exports.models import ExportFormat


class ExportForm(forms.Form):
    run = forms.ChoiceField(label="Judge")
    format = forms.ChoiceField(choices=ExportFormat.choices, initial=ExportFormat.BUNDLE)
    model = forms.CharField(
        max_length=200, required=False, label="Model (for imported judges)",
        help_text="The litellm model the bundle will call; a run made here keeps its own.",
    )
    reference_column = forms.CharField(
        max_length=80, initial="reference", label="Reference column (pairwise judges)",
        help_text="The dataset column each completion is compared with.",
    )
    force = forms.BooleanField(
        required=False, label="Export anyway: this judge did not pass the gate",
        help_text="The export will say UNCALIBRATED in calibration.json, its README and reward.py.",
    )

    def __init__(self, *args, runs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["run"].choices = [
            (str(r.pk), f"{r.name} (#{r.pk}) · {r.rubric_version.rubric.name} "
                        f"v{r.rubric_version.number} on {r.dataset.name}"
                        f"{' · imported' if r.kind == 'imported' else ''}"
                        f"{_failed_note(r)}")
            for r in runs
        ]


def _failed_note(run) -> str:
    """The failed-call share beside a judge (exports.views.exportable_runs sets it)."""
    share = getattr(run, "failed_share", None)
    if run.kind != "live" or share is None:
        return ""
    return f" · {run.failed_calls:,} failed calls ({share:.1%})"
