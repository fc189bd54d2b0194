from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from apps.projects.models import Project, Role


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=120)
    slug = forms.SlugField(
        max_length=60, required=False, help_text="Used in addresses; made from the name if empty."
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class ProjectSettingsForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = [
            "name", "description", "gate_min_n", "gate_min_kappa_lower", "gate_min_kappa",
            "gate_min_human_alpha", "gate_probe_max_fpr", "gate_probes_accepted",
            "gate_probes_required", "max_queued_calls", "monthly_cost_limit_usd",
        ]
        labels = {
            "gate_min_n": "Gate: minimum n per criterion",
            "gate_min_kappa_lower": "Gate: minimum lower bound of kappa's 95% interval",
            "gate_min_kappa": "Gate: minimum kappa",
            "gate_min_human_alpha": "Gate: minimum agreement among the humans (alpha)",
            "gate_probe_max_fpr": "Gate: most false-positive rate of a reward-hacking probe "
                                  "(upper end of its 95% interval)",
            "gate_probes_accepted": "Gate: probes accepted as out of scope (comma-separated)",
            "gate_probes_required": "Gate: a judge must have been probed",
            "max_queued_calls": "Most model calls the project's runs may have queued",
            "monthly_cost_limit_usd": "Most model cost per calendar month (USD)",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The operator's ceilings, said beside the fields they bound (Project.clean enforces).
        self.fields["max_queued_calls"].help_text = (
            f"At most {settings.MAX_QUEUED_CALLS_LIMIT:,} on this server.")
        ceiling = settings.MONTHLY_COST_LIMIT_USD
        self.fields["monthly_cost_limit_usd"].help_text = (
            "Counts the cost litellm knows a price for. " + (
                f"At most ${ceiling:,.2f} on this server; empty means that."
                if ceiling is not None else "Empty: no ceiling."))
        for name in ("gate_min_kappa_lower", "gate_min_kappa", "gate_min_human_alpha",
                     "gate_probe_max_fpr"):
            self.fields[name].help_text = "From 0 to 1."
        # A form posted without it (a script written before the probes) keeps the value.
        self.fields["gate_probe_max_fpr"].required = False
        self.fields["gate_probes_accepted"].help_text = (
            "Still measured and shown, not gated; e.g. markdown. See the calibration guide.")


class MemberAddForm(forms.Form):
    user = forms.CharField(label="Username or e-mail", max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.LABELLER)


class MemberRoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=80, help_text="What will use it, e.g. 'nightly CI'.")


class SignupForm(UserCreationForm):
    email = forms.EmailField(
        label="E-mail", required=False,
        help_text="Optional; lets an owner add you to a project by e-mail.",
    )

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "email")

    def clean_email(self) -> str:
        # Owners add members by e-mail, so one address must name one person.
        email = self.cleaned_data.get("email", "").strip()
        if email and get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address exists already.")
        return email


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.LABELLER)


class AcceptInvitationForm(UserCreationForm):
    """A new account from an invitation: the e-mail is the invited one."""

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username",)
