"""The demo project from the bundled real data (demo_data/README.md).

load_demo takes seconds, so it runs once for this module: the fixture commits the demo outside
the per-test transactions and deletes it afterwards. Tests only read it (or change it inside
their own transaction, which is rolled back).
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from apps.datasets.models import Dataset, Item
from apps.intake import demo
from apps.judging.models import JudgeRun, Verdict
from apps.labeling.models import HumanLabel
from apps.projects.models import Membership, Project, Role
from apps.rubrics.models import Rubric, RubricVersion

pytestmark = pytest.mark.django_db


def _counts() -> dict:
    return {
        "projects": Project.objects.count(),
        "rubrics": Rubric.objects.count(),
        "versions": RubricVersion.objects.count(),
        "datasets": Dataset.objects.count(),
        "items": Item.objects.count(),
        "labels": HumanLabel.objects.count(),
        "runs": JudgeRun.objects.count(),
        "verdicts": Verdict.objects.count(),
        "users": get_user_model().objects.count(),
        "members": Membership.objects.count(),
    }


@pytest.fixture(scope="module")
def loaded(demo_loaded):
    return demo_loaded


@pytest.fixture
def project(loaded) -> Project:
    return Project.objects.get(slug=demo.PROJECT_SLUG)


def _pandalm(project) -> Dataset:
    return Dataset.objects.get(project=project, name=demo.PANDALM_DATASET)


def _hanna(project) -> Dataset:
    return Dataset.objects.get(project=project, name=demo.HANNA_DATASET)


def test_load_demo_reports_what_it_created_and_the_login(loaded):
    assert "created project" in loaded
    assert "created dataset PandaLM test set" in loaded
    assert "demo login: demo / demo" in loaded


def test_loading_the_demo_again_changes_nothing(project):
    before = _counts()
    out = io.StringIO()
    call_command("load_demo", stdout=out)
    assert _counts() == before
    assert "created" not in out.getvalue()
    assert "password unchanged" in out.getvalue()


def test_loading_again_leaves_an_edited_demo_rubric_alone(project):
    rubric = Rubric.objects.get(project=project, slug="pandalm-preference")
    rubric.versions.update(note="edited by a user")
    call_command("load_demo", stdout=io.StringIO())
    assert list(rubric.versions.values_list("number", "note")) == [(1, "edited by a user")]


def test_the_demo_project_and_its_owner(project):
    assert project.is_demo
    owner = Membership.objects.get(project=project, user__username="demo")
    assert owner.role == Role.OWNER
    # The demo login of `make run` works with sign-up closed and login throttling on.
    response = Client().post("/accounts/login/", {"username": "demo", "password": "demo"})
    assert response.status_code == 302 and response["Location"] != "/accounts/login/"


def test_the_pandalm_rubric_is_pairwise_and_published(project):
    rubric = Rubric.objects.get(project=project, slug="pandalm-preference")
    assert rubric.mode == "pairwise"
    [version] = rubric.versions.all()
    assert version.is_published
    assert [c.key for c in version.criteria.all()] == ["overall"]


def test_pandalm_has_999_pairwise_items_with_three_annotators(project):
    dataset = _pandalm(project)
    assert dataset.kind == "pairwise" and dataset.item_count == 999
    assert Item.objects.filter(dataset=dataset).count() == 999
    labels = HumanLabel.objects.filter(item__dataset=dataset)
    assert labels.count() == 2997
    assert set(labels.values_list("annotator", flat=True)) == {
        "annotator1", "annotator2", "annotator3"
    }
    first = Item.objects.get(dataset=dataset, external_id="0")
    assert first.prompt and first.response_a and first.response_b


def test_the_annotators_majority_is_105_ties_422_a_472_b(project):
    votes: dict[int, list[str]] = defaultdict(list)
    for item_id, value in HumanLabel.objects.filter(
        item__dataset=_pandalm(project), criterion_key="overall"
    ).values_list("item_id", "value"):
        votes[item_id].append(value)
    majority = Counter()
    for values in votes.values():
        value, n = Counter(values).most_common(1)[0]
        majority[value if n >= 2 else "none"] += 1
    assert majority == {"tie": 105, "A": 422, "B": 472}


def test_pandalm_carries_two_imported_judges_with_999_verdicts_each(project):
    runs = JudgeRun.objects.filter(dataset=_pandalm(project))
    assert {r.name: r.kind for r in runs} == {"gpt-3.5-turbo": "imported",
                                              "PandaLM-7B": "imported"}
    for run in runs:
        assert run.verdicts.count() == 999, run.name
        assert run.status == "completed"


def test_gpt_answers_that_did_not_parse_are_flagged_and_count_as_tie(project):
    gpt = JudgeRun.objects.get(dataset=_pandalm(project), name="gpt-3.5-turbo")
    flagged = gpt.verdicts.filter(flag="unparseable")
    assert flagged.count() == 25
    assert set(flagged.values_list("value", flat=True)) == {"tie"}
    values = Counter(gpt.verdicts.values_list("value", flat=True))
    assert values == {"B": 476, "A": 460, "tie": 38 + 25}
    panda = JudgeRun.objects.get(dataset=_pandalm(project), name="PandaLM-7B")
    assert not panda.verdicts.exclude(flag="").exists()
    assert Counter(panda.verdicts.values_list("value", flat=True)) == {
        "B": 459, "A": 433, "tie": 107
    }


def test_hanna_is_a_pointwise_ratings_only_dataset_with_a_six_criterion_rubric(project):
    dataset = _hanna(project)
    assert dataset.kind == "pointwise" and dataset.item_count == 1056
    assert dataset.texts_available is False
    assert "not distributed" in dataset.description
    rubric = Rubric.objects.get(project=project, slug="hanna-stories")
    criteria = list(rubric.versions.get().criteria.all())
    assert [c.key for c in criteria] == ["relevance", "coherence", "empathy", "surprise",
                                         "engagement", "complexity"]
    for criterion in criteria:
        assert criterion.scale_type == "ordinal"
        assert [level["value"] for level in criterion.levels] == [1, 2, 3, 4, 5]
        assert all(level["anchor"] for level in criterion.levels)
    assert HumanLabel.objects.filter(item__dataset=dataset).count() == 1056 * 6 * 3


def test_the_hanna_dataset_page_says_its_texts_are_not_distributed(project):
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    response = client.get(reverse("dataset_detail", args=[project.slug, _hanna(project).pk]))
    assert response.status_code == 200
    assert "texts are not distributed" in response.content.decode()


def test_hanna_judge_verdicts_keep_the_mean_of_three_samples_and_use_the_nearest_level(project):
    runs = JudgeRun.objects.filter(dataset=_hanna(project))
    assert runs.count() == 16  # 4 models x 4 prompts
    assert set(runs.values_list("samples", flat=True)) == {3}
    verdicts = Verdict.objects.filter(run__dataset=_hanna(project))
    assert not verdicts.filter(mean__isnull=True).exists()
    assert set(verdicts.values_list("n_samples", flat=True)) == {3}
    for mean, value in verdicts.values_list("mean", "value")[:2000]:
        assert 1 <= mean <= 5
        nearest = min(range(1, 6), key=lambda level, m=mean: (abs(level - m), -level))
        assert value == str(nearest), (mean, value)
    example = verdicts.get(item__external_id="0", criterion_key="relevance",
                           run__name="Beluga-13B (prompt 1)")
    assert example.mean == pytest.approx(4.666667, abs=1e-6)
    assert example.value == "5"


def test_the_demo_pages_open_for_the_demo_owner(project):
    client = Client()
    client.force_login(get_user_model().objects.get(username="demo"))
    home = client.get(reverse("project_home", args=[project.slug]))
    assert home.status_code == 200
    assert demo.PANDALM_DATASET in home.content.decode()
    pandalm = client.get(reverse("dataset_detail", args=[project.slug, _pandalm(project).pk]))
    assert pandalm.status_code == 200


def test_load_demo_refuses_a_project_that_only_shares_the_demo_slug(project):
    from django.core.management.base import CommandError

    Project.objects.filter(pk=project.pk).update(is_demo=False)
    with pytest.raises(CommandError, match="not the demo"):
        call_command("load_demo", stdout=io.StringIO())


def test_load_demo_refuses_a_malformed_login(project):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="USER:PASSWORD"):
        call_command("load_demo", "--login", "demo", stdout=io.StringIO())


def test_load_demo_refuses_login_together_with_no_login(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--login and --no-login contradict each other"):
        call_command("load_demo", "--login", "x:y", "--no-login", stdout=io.StringIO())
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="x").exists()
