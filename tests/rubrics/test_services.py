"""Rubric services: drafts, criteria, publishing and import keep versions honest."""

from __future__ import annotations

import copy

import pytest
from django.core.exceptions import ValidationError

from apps.rubrics import content as content_mod
from apps.rubrics import prompting, scales, services
from apps.rubrics.content import ContentError
from apps.rubrics.models import Criterion, Mode, Rubric, RubricVersion
from apps.rubrics.selectors import current_draft, latest_published, version_content
from tests.factories import ProjectFactory, UserFactory
from tests.world import POINTWISE

pytestmark = pytest.mark.django_db


def _content(**changes) -> dict:
    return content_mod.validate({**copy.deepcopy(POINTWISE), **changes})


def _ordinal(n: int = 3) -> dict:
    return {"type": "ordinal",
            "levels": [{"value": i, "label": "", "anchor": f"level {i}"} for i in range(1, n + 1)]}


def _criterion(key: str, **changes) -> dict:
    return {"key": key, "name": key.title(), "description": "", "weight": 1,
            "scale": _ordinal(), **changes}


@pytest.fixture
def project():
    return ProjectFactory(slug="kitchen")


@pytest.fixture
def user():
    return UserFactory(username="ana")


@pytest.fixture
def rubric(project):
    rubric, _, _ = services.rubric_import(project=project, content=_content())
    return rubric


@pytest.fixture
def published(rubric, user):
    return services.rubric_publish(rubric=rubric, user=user, note="first version")


def _keys(version: RubricVersion) -> list[str]:
    return list(version.criteria.order_by("position", "id").values_list("key", flat=True))


# --- create and update ----------------------------------------------------------------------

def test_create_pointwise_starts_draft_v1_with_default_prompt_and_no_criteria(project):
    rubric = services.rubric_create(project=project, name="Helpful answers",
                                    description="Cooking questions.")
    assert rubric.slug == "helpful-answers" and rubric.mode == Mode.POINTWISE
    draft = current_draft(rubric)
    assert draft.number == 1 and draft.description == "Cooking questions."
    assert draft.user_template == prompting.DEFAULT_USER_POINTWISE
    assert draft.criteria.count() == 0


def test_create_pairwise_starts_with_one_overall_preference(project):
    rubric = services.rubric_create(project=project, name="Prefs", mode=Mode.PAIRWISE)
    (criterion,) = current_draft(rubric).criteria.all()
    assert criterion.key == "overall" and criterion.scale_type == scales.PAIRWISE
    assert current_draft(rubric).user_template == prompting.DEFAULT_USER_PAIRWISE


def test_create_refuses_a_slug_in_use(project):
    services.rubric_create(project=project, name="Tone")
    with pytest.raises(ValidationError) as info:
        services.rubric_create(project=project, name="Other", slug="tone")
    assert "already has a rubric 'tone'" in str(info.value.message_dict["slug"])


def test_the_same_slug_is_fine_in_another_project(project):
    services.rubric_create(project=project, name="Tone")
    services.rubric_create(project=ProjectFactory(), name="Tone")


def test_update_changes_name_slug_task_and_threshold(rubric):
    draft = services.rubric_update(rubric=rubric, name=" New name ", slug="new-slug",
                                   description="New task.", pass_threshold=0.7)
    rubric.refresh_from_db()
    assert (rubric.name, rubric.slug) == ("New name", "new-slug")
    assert (draft.description, draft.pass_threshold) == ("New task.", 0.7)


def test_update_refuses_a_slug_taken_by_another_rubric(project, rubric):
    services.rubric_create(project=project, name="Taken")
    with pytest.raises(ValidationError) as info:
        services.rubric_update(rubric=rubric, name="x", slug="taken", description="",
                               pass_threshold=0.5)
    assert "slug" in info.value.message_dict


def test_mode_can_change_before_publishing_and_takes_that_modes_defaults(rubric):
    services.rubric_update(rubric=rubric, name="x", description="", pass_threshold=0.5,
                           mode=Mode.PAIRWISE)
    rubric.refresh_from_db()
    assert rubric.mode == Mode.PAIRWISE
    draft = current_draft(rubric)
    assert _keys(draft) == ["overall"]
    assert draft.user_template == prompting.DEFAULT_USER_PAIRWISE


def test_mode_cannot_change_after_publish(rubric, published):
    with pytest.raises(ValidationError) as info:
        services.rubric_update(rubric=rubric, name="x", description="", pass_threshold=0.5,
                               mode=Mode.PAIRWISE)
    assert "mode" in info.value.message_dict
    rubric.refresh_from_db()
    assert rubric.mode == Mode.POINTWISE


def test_import_cannot_change_the_mode_after_publish(project, rubric, published):
    pairwise = content_mod.validate({
        "rubric": rubric.slug, "mode": "pairwise",
        "criteria": [{"key": "overall", "scale": {
            "type": "pairwise", "levels": scales.default_levels(scales.PAIRWISE)}}],
    })
    with pytest.raises(ContentError, match="its mode cannot change"):
        services.rubric_import(project=project, content=pairwise)


def test_prompt_is_saved_with_its_problems_so_no_typing_is_lost(rubric):
    problems = services.rubric_update_prompt(rubric=rubric, system_template="Be fair.\r\n",
                                             user_template="{{ prompt }}\r\n{{ respons }}")
    draft = current_draft(rubric)
    assert draft.user_template == "{{ prompt }}\n{{ respons }}"
    assert problems[0].startswith("User: line 2: unknown variable 'respons'")
    assert "User: must contain {{ response }}" in problems


# --- criteria -------------------------------------------------------------------------------

def test_criterion_add_appends_it_last(rubric):
    services.criterion_save(rubric=rubric, raw=_criterion("clarity"))
    assert _keys(current_draft(rubric)) == ["correct", "safe", "clarity"]


def test_criterion_save_refuses_a_key_in_use(rubric):
    with pytest.raises(ContentError) as info:
        services.criterion_save(rubric=rubric, raw=_criterion("safe"))
    assert info.value.errors == ["criterion.key: 'safe' is already used"]


def test_criterion_save_reports_level_errors_with_their_path(rubric):
    raw = _criterion("clarity")
    raw["scale"]["levels"][1]["anchor"] = ""
    with pytest.raises(ContentError) as info:
        services.criterion_save(rubric=rubric, raw=raw)
    assert info.value.errors == ["criterion.scale.levels[1].anchor: required"]


def test_criterion_edit_may_keep_its_own_key(rubric):
    criterion = current_draft(rubric).criteria.get(key="safe")
    services.criterion_save(rubric=rubric, raw=_criterion("safe", weight=3),
                            criterion_id=criterion.pk)
    criterion.refresh_from_db()
    assert criterion.weight == 3 and criterion.scale_type == "ordinal"


def test_criterion_move_up_and_down_and_not_past_the_ends(rubric):
    services.criterion_save(rubric=rubric, raw=_criterion("clarity"))
    draft = current_draft(rubric)
    clarity = draft.criteria.get(key="clarity")
    services.criterion_move(rubric=rubric, criterion_id=clarity.pk, offset=-1)
    assert _keys(draft) == ["correct", "clarity", "safe"]
    services.criterion_move(rubric=rubric, criterion_id=clarity.pk, offset=-1)
    services.criterion_move(rubric=rubric, criterion_id=clarity.pk, offset=-1)
    assert _keys(draft) == ["clarity", "correct", "safe"]
    services.criterion_move(rubric=rubric, criterion_id=clarity.pk, offset=1)
    assert _keys(draft) == ["correct", "clarity", "safe"]


def test_criterion_move_of_an_unknown_criterion_raises(rubric):
    with pytest.raises(Criterion.DoesNotExist):
        services.criterion_move(rubric=rubric, criterion_id=999_999, offset=1)


def test_criterion_remove(rubric):
    draft = current_draft(rubric)
    services.criterion_remove(rubric=rubric, criterion_id=draft.criteria.get(key="safe").pk)
    assert _keys(draft) == ["correct"]


# --- publish --------------------------------------------------------------------------------

def test_publish_requires_a_note(rubric, user):
    for note in ("", "   \n"):
        with pytest.raises(ValidationError) as info:
            services.rubric_publish(rubric=rubric, user=user, note=note)
        assert "note" in info.value.message_dict
    assert latest_published(rubric) is None


def test_publish_records_hash_note_time_and_author(rubric, user, published):
    assert published.number == 1 and published.is_published
    assert published.note == "first version" and published.published_by == user
    assert published.content_hash == content_mod.content_hash(
        content_mod.validate(version_content(published)))
    assert current_draft(rubric) is None


def test_publish_refuses_an_invalid_draft_with_paths(rubric, user):
    services.rubric_update_prompt(rubric=rubric, system_template="", user_template="{{ prompt }}")
    with pytest.raises(ContentError) as info:
        services.rubric_publish(rubric=rubric, user=user, note="n")
    assert info.value.errors == ["prompt.user: must contain {{ response }}"]
    assert latest_published(rubric) is None


def test_a_published_version_is_frozen(published):
    published.description = "changed behind the service's back"
    with pytest.raises(ValidationError, match="cannot be changed"):
        published.save()
    published.refresh_from_db()
    assert published.description == "Answer cooking questions."


def test_the_criteria_of_a_published_version_are_frozen_too(published):
    criterion = published.criteria.get(key="safe")
    criterion.weight = 9
    with pytest.raises(ValidationError, match="cannot be changed"):
        criterion.save()
    with pytest.raises(ValidationError):
        Criterion(version=published, key="extra", name="Extra", scale_type="binary").save()


def test_editing_after_publish_starts_draft_v2_copied_from_v1(rubric, published):
    services.criterion_save(rubric=rubric, raw=_criterion("clarity"))
    draft = current_draft(rubric)
    assert draft.number == 2 and not draft.is_published
    assert _keys(draft) == ["correct", "safe", "clarity"]
    assert _keys(published) == ["correct", "safe"]
    assert draft.user_template == published.user_template
    v1_correct = published.criteria.get(key="correct")
    v2_correct = draft.criteria.get(key="correct")
    assert v2_correct.pk != v1_correct.pk and v2_correct.levels == v1_correct.levels


def test_a_rubric_has_at_most_one_draft(rubric, published):
    first = services.rubric_draft(rubric=rubric)
    assert services.rubric_draft(rubric=rubric) == first
    assert rubric.versions.filter(published_at__isnull=True).count() == 1


def test_identical_content_does_not_publish_twice(rubric, user, published):
    services.rubric_draft(rubric=rubric)  # an untouched copy of v1
    with pytest.raises(ValidationError, match="Nothing changed since version 1"):
        services.rubric_publish(rubric=rubric, user=user, note="again")
    assert rubric.versions.filter(published_at__isnull=False).count() == 1


def test_publish_with_no_draft_says_so(rubric, user, published):
    with pytest.raises(ValidationError, match="no draft"):
        services.rubric_publish(rubric=rubric, user=user, note="n")


def test_publish_stores_the_canonical_form(rubric, user):
    draft = current_draft(rubric)
    draft.description = "Task.  \n\n"
    draft.save()
    version = services.rubric_publish(rubric=rubric, user=user, note="n")
    assert version.description == "Task."


def test_the_second_publish_is_v2_and_keeps_v1(rubric, user, published):
    services.criterion_save(rubric=rubric, raw=_criterion("clarity"))
    v2 = services.rubric_publish(rubric=rubric, user=user, note="add clarity")
    assert v2.number == 2 and v2.content_hash != published.content_hash
    assert latest_published(rubric) == v2
    published.refresh_from_db()
    assert _keys(published) == ["correct", "safe"]


# --- import ---------------------------------------------------------------------------------

def test_import_creates_the_rubric_as_a_draft(project):
    rubric, version, changed = services.rubric_import(project=project, content=_content())
    assert changed and rubric.slug == "helpful" and version.number == 1
    assert not version.is_published and _keys(version) == ["correct", "safe"]


def test_import_with_publish(project, user):
    rubric, version, changed = services.rubric_import(project=project, content=_content(),
                                                      user=user, publish=True, note="ci")
    assert changed and version.is_published and version.note == "ci"


def test_import_of_identical_content_is_a_no_op(project, rubric, published):
    before = list(RubricVersion.objects.values_list("pk", "number", "updated_at"))
    again, version, changed = services.rubric_import(project=project, content=_content(),
                                                     publish=True, note="again")
    assert (again, version, changed) == (rubric, published, False)
    assert list(RubricVersion.objects.values_list("pk", "number", "updated_at")) == before


def test_import_of_identical_content_leaves_a_draft_in_progress_alone(project, rubric, published):
    services.criterion_save(rubric=rubric, raw=_criterion("clarity"))
    _, version, changed = services.rubric_import(project=project, content=_content(),
                                                 publish=True)
    assert version == published and not changed
    assert _keys(current_draft(rubric)) == ["correct", "safe", "clarity"]


def test_import_of_new_content_replaces_the_draft_and_publishes_v2(project, rubric, published):
    content = _content(description="A new task.")
    _, version, changed = services.rubric_import(project=project, content=content,
                                                 publish=True, note="reworded")
    assert changed and version.number == 2 and version.description == "A new task."
    assert Rubric.objects.filter(project=project).count() == 1


def test_import_twice_without_publish_keeps_one_draft(project):
    services.rubric_import(project=project, content=_content())
    rubric, version, changed = services.rubric_import(project=project, content=_content())
    assert not changed and version.number == 1
    assert rubric.versions.count() == 1


def test_import_updates_the_name_without_a_new_version(project, rubric, published):
    renamed, version, changed = services.rubric_import(
        project=project, content=_content(name="Better name"))
    assert renamed.name == "Better name" and version == published and not changed


def test_import_may_change_the_mode_while_nothing_is_published(project, rubric):
    pairwise = content_mod.validate({
        "rubric": rubric.slug, "mode": "pairwise",
        "criteria": [{"key": "overall", "scale": {
            "type": "pairwise", "levels": scales.default_levels(scales.PAIRWISE)}}],
    })
    rubric, version, changed = services.rubric_import(project=project, content=pairwise)
    assert rubric.mode == "pairwise" and _keys(version) == ["overall"]
