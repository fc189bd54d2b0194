from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from apps.datasets.models import Dataset, Item, Kind
from apps.projects.models import Membership, Project, Role
from apps.rubrics import scales
from apps.rubrics.models import Criterion, Rubric, RubricVersion


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "pw")
        if create:
            self.save(update_fields=["password"])


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    slug = factory.Sequence(lambda n: f"project-{n}")
    name = factory.Sequence(lambda n: f"Project {n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.EDITOR


class RubricFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Rubric

    project = factory.SubFactory(ProjectFactory)
    slug = factory.Sequence(lambda n: f"rubric-{n}")
    name = factory.Sequence(lambda n: f"Rubric {n}")


class RubricVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RubricVersion

    rubric = factory.SubFactory(RubricFactory)
    number = 1
    description = "Answer questions about cooking."
    system_template = "You grade answers."
    user_template = "Q: {{ prompt }}\nA: {{ response }}\n{{ criterion }}"


def ordinal_levels(n: int = 5) -> list[dict]:
    return [{"value": i, "label": f"L{i}", "anchor": f"anchor {i}"} for i in range(1, n + 1)]


class CriterionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Criterion

    version = factory.SubFactory(RubricVersionFactory)
    key = factory.Sequence(lambda n: f"crit{n}")
    name = factory.LazyAttribute(lambda c: c.key.title())
    scale_type = scales.ORDINAL
    levels = factory.LazyFunction(ordinal_levels)
    weight = 1.0


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"dataset-{n}")
    kind = Kind.POINTWISE


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    dataset = factory.SubFactory(DatasetFactory)
    external_id = factory.Sequence(lambda n: f"item-{n}")
    position = factory.Sequence(lambda n: n)
    prompt = "How long do I boil an egg?"
    response = "About nine minutes for a hard egg."
