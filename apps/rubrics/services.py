"""Writes for rubrics: drafts, criteria, publishing, import (STYLE.md 3).

A rubric has at most one draft (the version with no published_at). Editing after a publish
starts a new draft copied from the latest published version; a published version never changes.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.text import slugify

from apps.projects.models import Project
from apps.rubrics import content as content_mod
from apps.rubrics import prompting, scales
from apps.rubrics.models import Criterion, Mode, Rubric, RubricVersion
from apps.rubrics.selectors import latest_published, version_content


def _default_templates(mode: str) -> tuple[str, str]:
    if mode == Mode.PAIRWISE:
        return prompting.DEFAULT_SYSTEM_PAIRWISE, prompting.DEFAULT_USER_PAIRWISE
    return prompting.DEFAULT_SYSTEM_POINTWISE, prompting.DEFAULT_USER_POINTWISE


def _slug_error(project: Project, slug: str, *, exclude: Rubric | None = None) -> str | None:
    if not slug:
        return "Give the rubric a name or slug with letters or digits."
    taken = Rubric.objects.filter(project=project, slug=slug)
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    if taken.exists():
        return f"This project already has a rubric '{slug}'."
    return None


def _add_overall_preference(version: RubricVersion) -> None:
    # One overall preference is the usual start; per-criterion preferences can be added.
    Criterion.objects.create(
        version=version, position=0, key="overall", name="Overall preference",
        description="Which response better fulfils the task as a whole?",
        scale_type=scales.PAIRWISE, levels=scales.default_levels(scales.PAIRWISE),
    )


@transaction.atomic
def rubric_create(
    *, project: Project, name: str, slug: str = "", mode: str = Mode.POINTWISE, description=""
) -> Rubric:
    slug = slugify(slug or name)[:60]
    errors = {}
    if problem := _slug_error(project, slug):
        errors["slug"] = problem
    if mode not in Mode.values:
        errors["mode"] = f"Unknown mode '{mode}'."
    if errors:
        raise ValidationError(errors)
    rubric = Rubric.objects.create(project=project, slug=slug, name=name.strip() or slug, mode=mode)
    system, user = _default_templates(mode)
    version = RubricVersion.objects.create(
        rubric=rubric, number=1, description=description, system_template=system,
        user_template=user,
    )
    if mode == Mode.PAIRWISE:
        _add_overall_preference(version)
    return rubric


@transaction.atomic
def rubric_draft(*, rubric: Rubric) -> RubricVersion:
    """The rubric's draft, started from the latest published version if there is none."""
    Rubric.objects.select_for_update().filter(pk=rubric.pk).first()
    draft = rubric.versions.filter(published_at__isnull=True).first()
    if draft is not None:
        return draft
    base = latest_published(rubric)
    number = (rubric.versions.aggregate(m=Max("number"))["m"] or 0) + 1
    system, user = _default_templates(rubric.mode)
    draft = RubricVersion.objects.create(
        rubric=rubric,
        number=number,
        description=base.description if base else "",
        system_template=base.system_template if base else system,
        user_template=base.user_template if base else user,
        pass_threshold=base.pass_threshold if base else 0.5,
    )
    if base is not None:
        Criterion.objects.bulk_create(
            Criterion(
                version=draft, position=c.position, key=c.key, name=c.name,
                description=c.description, scale_type=c.scale_type, levels=c.levels,
                weight=c.weight, examples=c.examples,
            )
            for c in base.criteria.all()
        )
    return draft


def _touch(draft: RubricVersion) -> None:
    draft.save(update_fields=["updated_at"])


@transaction.atomic
def rubric_update(
    *, rubric: Rubric, name: str, description: str, pass_threshold: float,
    mode: str | None = None, slug: str | None = None,
) -> RubricVersion:
    """Change the rubric's name and slug, and the draft's task and threshold.

    The mode can change only while nothing is published; changing it replaces the criteria and
    the prompt with the new mode's defaults, since no criterion fits both modes.
    """
    errors = {}
    if not name.strip():
        errors["name"] = "Required."
    if not 0 <= pass_threshold <= 1:
        errors["pass_threshold"] = "A reward threshold from 0 to 1."
    if mode and mode != rubric.mode:
        if latest_published(rubric) is not None:
            errors["mode"] = "The mode is fixed once a version is published; make a new rubric."
        elif mode not in Mode.values:
            errors["mode"] = f"Unknown mode '{mode}'."
    if slug is not None:
        slug = slugify(slug)[:60]
        if slug != rubric.slug and (problem := _slug_error(rubric.project, slug, exclude=rubric)):
            errors["slug"] = problem
    if errors:
        raise ValidationError(errors)
    draft = rubric_draft(rubric=rubric)
    if mode and mode != rubric.mode:
        rubric.mode = mode
        system, user = _default_templates(mode)
        draft.system_template, draft.user_template = system, user
        draft.criteria.all().delete()
        if mode == Mode.PAIRWISE:
            _add_overall_preference(draft)
    if slug:
        rubric.slug = slug
    rubric.name = name.strip()
    rubric.save()
    draft.description = description
    draft.pass_threshold = pass_threshold
    draft.save()
    return draft


@transaction.atomic
def rubric_update_prompt(*, rubric: Rubric, system_template: str, user_template: str) -> list:
    """Save the templates (even with errors, so no typing is lost) and return their problems."""
    draft = rubric_draft(rubric=rubric)
    draft.system_template = system_template.replace("\r\n", "\n")
    draft.user_template = user_template.replace("\r\n", "\n")
    draft.save()
    return prompt_problems(draft)


def prompt_problems(version: RubricVersion) -> list[str]:
    problems = [f"System: {e}" for e in prompting.template_errors(version.system_template)]
    problems += [f"User: {e}" for e in prompting.template_errors(version.user_template)]
    problems += [
        e.replace("prompt.user", "User")
        for e in content_mod.template_coverage_errors(
            version.user_template, pairwise=version.rubric.is_pairwise, path="prompt.user"
        )
    ]
    return problems


def _clean_criterion(rubric: Rubric, raw: dict) -> dict:
    errors: list[str] = []
    clean = content_mod.clean_criterion(
        raw, path="criterion", pairwise=rubric.is_pairwise, errors=errors
    )
    if errors:
        raise content_mod.ContentError(errors)
    return clean


@transaction.atomic
def criterion_save(*, rubric: Rubric, raw: dict, criterion_id: int | None = None) -> Criterion:
    """Add a criterion to the draft, or change one (`criterion_id` from the same draft)."""
    clean = _clean_criterion(rubric, raw)
    draft = rubric_draft(rubric=rubric)
    clash = draft.criteria.filter(key=clean["key"])
    if criterion_id is not None:
        clash = clash.exclude(pk=criterion_id)
    if clash.exists():
        raise content_mod.ContentError([f"criterion.key: '{clean['key']}' is already used"])
    if criterion_id is None:
        position = (draft.criteria.aggregate(m=Max("position"))["m"] or 0) + 1
        criterion = Criterion(version=draft, position=position)
    else:
        criterion = draft.criteria.get(pk=criterion_id)
    old_signature = criterion.scale_signature if criterion_id is not None else None
    criterion.key = clean["key"]
    criterion.name = clean["name"]
    criterion.description = clean["description"]
    criterion.weight = clean["weight"]
    criterion.scale_type = clean["scale"]["type"]
    criterion.levels = clean["scale"]["levels"]
    if "examples" in raw:
        criterion.examples = clean.get("examples", [])
    elif old_signature is not None and old_signature != criterion.scale_signature:
        criterion.examples = []  # their verdicts were values of the old scale
    criterion.save()
    _touch(draft)
    return criterion


@transaction.atomic
def criterion_remove(*, rubric: Rubric, criterion_id: int) -> None:
    draft = rubric_draft(rubric=rubric)
    draft.criteria.filter(pk=criterion_id).delete()
    _touch(draft)


@transaction.atomic
def criterion_move(*, rubric: Rubric, criterion_id: int, offset: int) -> None:
    """Move a criterion up (offset -1) or down (+1) in the draft."""
    draft = rubric_draft(rubric=rubric)
    ordered = list(draft.criteria.order_by("position", "id"))
    index = next((i for i, c in enumerate(ordered) if c.pk == criterion_id), None)
    if index is None:
        raise Criterion.DoesNotExist
    target = index + offset
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
    for position, criterion in enumerate(ordered):
        if criterion.position != position:
            criterion.position = position
            criterion.save(update_fields=["position"])
    _touch(draft)


@transaction.atomic
def rubric_publish(*, rubric: Rubric, user, note: str) -> RubricVersion:
    if not note.strip():
        raise ValidationError({"note": "Say what changed and why; the note is required."})
    draft = rubric.versions.select_for_update().filter(published_at__isnull=True).first()
    if draft is None:
        raise ValidationError({"note": "There is no draft to publish: edit the rubric first."})
    content = content_mod.validate(version_content(draft))  # raises ContentError
    digest = content_mod.content_hash(content)
    previous = latest_published(rubric)
    if previous is not None and previous.content_hash == digest:
        raise ValidationError(
            {"note": f"Nothing changed since version {previous.number}; nothing to publish."}
        )
    # Store the canonical form, so the published row and its hash say the same thing.
    draft.description = content["description"]
    draft.system_template = content["prompt"]["system"]
    draft.user_template = content["prompt"]["user"]
    draft.pass_threshold = content["pass_threshold"]
    draft.note = note.strip()
    draft.content_hash = digest
    draft.published_at = timezone.now()
    draft.published_by = user if user is not None and user.is_authenticated else None
    draft.save()
    return draft


@transaction.atomic
def rubric_import(
    *, project: Project, content: dict, user=None, publish: bool = False, note: str = ""
) -> tuple[Rubric, RubricVersion, bool]:
    """Create or update a rubric from validated content. Returns (rubric, version, changed).

    The content replaces the draft's (a new draft is started after a publish). Importing the
    content of the latest published version changes nothing, so a pipeline can import, and
    publish, the same file on every run.
    """
    rubric = (
        Rubric.objects.select_for_update().filter(project=project, slug=content["rubric"]).first()
    )
    published = latest_published(rubric) if rubric is not None else None
    if rubric is None:
        rubric = Rubric.objects.create(
            project=project, slug=content["rubric"], name=content["name"], mode=content["mode"]
        )
    elif rubric.mode != content["mode"]:
        if published is not None:
            raise content_mod.ContentError([
                f"mode: rubric '{rubric.slug}' is {rubric.mode} and has published versions; "
                "its mode cannot change"
            ])
        rubric.mode = content["mode"]
        rubric.save(update_fields=["mode", "updated_at"])
    digest = content_mod.content_hash(content)
    if rubric.name != content["name"]:
        rubric.name = content["name"]
        rubric.save(update_fields=["name", "updated_at"])
    # The file says what the latest published version already says: nothing to do, and any
    # draft in progress is left alone, so a pipeline can import the same file on every run.
    if published is not None and published.content_hash == digest:
        return rubric, published, False
    draft = rubric_draft(rubric=rubric)
    changed = content_mod.content_hash(version_content(draft)) != digest
    if changed:
        draft.description = content["description"]
        draft.pass_threshold = content["pass_threshold"]
        draft.system_template = content["prompt"]["system"]
        draft.user_template = content["prompt"]["user"]
        draft.save()
        draft.criteria.all().delete()
        Criterion.objects.bulk_create(
            Criterion(
                version=draft, position=i, key=c["key"], name=c["name"],
                description=c["description"], weight=c["weight"], scale_type=c["scale"]["type"],
                levels=c["scale"]["levels"], examples=c.get("examples", []),
            )
            for i, c in enumerate(content["criteria"])
        )
    if publish:
        draft = rubric_publish(rubric=rubric, user=user, note=note or "Imported from YAML")
        changed = True
    return rubric, draft, changed


def rubric_note_add(*, rubric: Rubric, text: str, criterion_key: str = "", source: str = "",
                    user=None):
    """Collect a note for the next revision of the rubric (shown on its draft)."""
    from apps.rubrics.models import RubricNote

    text = text.strip()
    if not text:
        raise ValidationError({"text": "Write the note."})
    return RubricNote.objects.create(rubric=rubric, text=text[:4000],
                                     criterion_key=criterion_key[:60], source=source[:300],
                                     created_by=user)


def rubric_note_resolve(*, rubric: Rubric, note_id: int) -> None:
    from apps.rubrics.models import RubricNote

    RubricNote.objects.filter(rubric=rubric, pk=note_id).update(resolved=True)
