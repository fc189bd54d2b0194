from __future__ import annotations

from django import forms

from apps.datasets.forms import dataset_choices
from apps.judging.planning import RunSettings, Subset
from apps.rubrics.forms import version_choices

SUBSETS = [
    ("all", "All items"),
    ("labelled", "Items with human labels"),
    ("sample", "A random sample"),
]


class JudgeRunForm(forms.Form):
    version = forms.ChoiceField(label="Rubric version")
    dataset = forms.ChoiceField(label="Dataset")
    name = forms.CharField(max_length=120, required=False, label="Judge name",
                           help_text="Shown in reports; the model name if empty.")
    model = forms.CharField(
        max_length=200, initial="openai/gpt-4.1-mini",
        help_text="Any litellm model: openai/gpt-4.1-mini, anthropic/…, ollama/…, or "
                  "openai/<name> with an API base for vLLM and other OpenAI-compatible servers.",
    )
    api_base = forms.CharField(max_length=500, required=False, label="API base",
                               help_text="e.g. http://gpu-box:8000/v1 (leave empty for the "
                                         "provider's own endpoint)")
    temperature = forms.FloatField(initial=0.0, min_value=0, max_value=2)
    max_tokens = forms.IntegerField(initial=400, min_value=1, max_value=32000,
                                    label="Max tokens per answer")
    samples = forms.IntegerField(initial=1, min_value=1, max_value=20,
                                 label="Samples per item (K)",
                                 help_text="K > 1: majority (categories) or mean (levels).")
    concurrency = forms.IntegerField(initial=16, min_value=1, max_value=1000,
                                     help_text="Calls in flight for the whole run, all workers.")
    timeout_s = forms.FloatField(initial=60, min_value=1, max_value=3600,
                                 label="Timeout per call (s)")
    use_cache = forms.BooleanField(initial=True, required=False, label="Use the call cache",
                                   help_text="Identical prompts are answered from earlier runs.")
    subset = forms.ChoiceField(choices=SUBSETS, initial="all", label="Items")
    sample_size = forms.IntegerField(min_value=1, required=False, label="Sample size")
    seed = forms.IntegerField(initial=0, required=False, label="Sample seed")

    def __init__(self, *args, versions=(), datasets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = version_choices(versions)
        self.fields["dataset"].choices = dataset_choices(datasets)

    def clean(self):
        data = super().clean()
        if data.get("subset") == "sample" and not data.get("sample_size"):
            self.add_error("sample_size", "Give the sample size.")
        return data

    def to_run_settings(self) -> RunSettings:
        d = self.cleaned_data
        return RunSettings(
            model=d["model"].strip(), api_base=(d.get("api_base") or "").strip(),
            temperature=d["temperature"], max_tokens=d["max_tokens"], samples=d["samples"],
            concurrency=d["concurrency"], timeout_s=d["timeout_s"],
            use_cache=bool(d.get("use_cache")),
        )

    def to_subset(self) -> Subset:
        d = self.cleaned_data
        return Subset(kind=d["subset"], size=d.get("sample_size"), seed=d.get("seed") or 0)
