from __future__ import annotations

from django import forms
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
            "gate_min_human_alpha", "max_queued_calls",
        ]
        labels = {
            "gate_min_n": "Gate: minimum n per criterion",
            "gate_min_kappa_lower": "Gate: minimum lower bound of kappa's 95% interval",
            "gate_min_kappa": "Gate: minimum kappa",
            "gate_min_human_alpha": "Gate: minimum agreement among the humans (alpha)",
            "max_queued_calls": "Most model calls one judge run may queue",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def clean(self):
        data = super().clean()
        for field in ("gate_min_kappa_lower", "gate_min_kappa", "gate_min_human_alpha"):
            value = data.get(field)
            if value is not None and not -1 <= value <= 1:
                self.add_error(field, "Kappa lies between -1 and 1.")
        return data


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
