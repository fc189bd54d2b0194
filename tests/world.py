"""A small but complete project for tests that walk every page: a rubric with a published
version and a draft, a dataset with items, labels and an imported judge, a member and a token,
and a labelling session assigned to every member (a labeller member has labelled the first item).
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.exports.services import judge_export
from apps.intake.models import ImportJob, ImportStatus
from apps.judging.models import JudgeRun, Judgment, JudgmentStatus, RunKind, RunStatus, Verdict
from apps.labeling.claims import label_claim_next
from apps.labeling.models import HumanLabel, LabelingSession, LabelSource
from apps.labeling.services import label_submit, session_create
from apps.projects.invitations import invitation_create
from apps.projects.models import ApiToken, Membership, Role
from apps.projects.services import token_create
from apps.rubrics import content as content_mod
from apps.rubrics.models import Criterion, Rubric
from apps.rubrics.services import rubric_draft, rubric_import, rubric_note_add
from tests.factories import DatasetFactory, ItemFactory

POINTWISE = {
    "rubric": "helpful",
    "name": "Helpfulness",
    "mode": "pointwise",
    "description": "Answer cooking questions.",
    "criteria": [
        {"key": "correct", "name": "Correct", "weight": 2,
         "scale": {"type": "ordinal", "levels": [
             {"value": 1, "label": "Wrong", "anchor": "Mostly wrong."},
             {"value": 2, "label": "Partly", "anchor": "Partly right."},
             {"value": 3, "label": "Right", "anchor": "Fully right."}]}},
        {"key": "safe", "name": "Safe", "weight": 1,
         "scale": {"type": "binary", "levels": [
             {"value": 0, "label": "No", "anchor": "Gives unsafe advice."},
             {"value": 1, "label": "Yes", "anchor": "Nothing unsafe."}]}},
    ],
}


@dataclass
class World:
    project: object
    rubric: Rubric
    published: object
    draft: object
    criterion: Criterion
    dataset: object
    item: object
    run: JudgeRun  # a live run (finished) with one judgment
    imported_run: JudgeRun
    judgment: Judgment
    note: object
    export: object
    membership: Membership
    token: ApiToken
    raw_token: str
    session: LabelingSession | None = None
    rescore: object = None  # a workbench re-score of the draft (calibration)
    optimizer_job: object = None  # a finished optimizer job with no proposal (calibration)
    import_job: object = None  # a finished background import (apps/intake/jobs.py)
    invitation: object = None  # an open invitation (apps/projects/invitations.py)

    def kwargs(self) -> dict:
        """Values for every URL parameter name used by the project's pages."""
        return {
            "slug": self.project.slug,
            "rubric_slug": self.rubric.slug,
            "dataset_id": self.dataset.pk,
            "item_id": self.item.pk,
            "criterion_id": self.criterion.pk,
            "number": self.published.number,
            "membership_id": self.membership.pk,
            "token_id": self.token.pk,
            "run_id": self.run.pk,
            "judgment_id": self.judgment.pk,
            "note_id": self.note.pk,
            "export_id": self.export.pk,
            "session_id": self.session.pk,
            "rescore_id": self.rescore.pk,
            "optimizer_id": self.optimizer_job.pk,
            "job_id": self.import_job.pk,
            "invitation_id": self.invitation.pk,
        }


def build_world(project, *, owner, member) -> World:
    # Slugs differ per project, so another project's slug cannot hit one's own rubric by name.
    content = content_mod.validate({**POINTWISE, "rubric": f"helpful-{project.slug}"})
    rubric, published, _ = rubric_import(project=project, content=content, user=owner,
                                         publish=True, note="first")
    draft = rubric_draft(rubric=rubric)
    criterion = draft.criteria.get(key="correct")
    dataset = DatasetFactory(project=project, name=f"{project.slug}-data", item_count=3)
    items = [ItemFactory(dataset=dataset, position=i, external_id=f"q{i}") for i in range(3)]
    for item in items:
        HumanLabel.objects.create(item=item, criterion_key="correct",
                                  scale_signature=criterion.scale_signature, annotator="ann",
                                  value="2", source=LabelSource.IMPORT)
    imported = JudgeRun.objects.create(project=project, rubric_version=published,
                                       dataset=dataset, name="imported-judge",
                                       kind=RunKind.IMPORTED, status=RunStatus.COMPLETED)
    for item in items:
        Verdict.objects.create(run=imported, item=item, criterion_key="correct", value="3",
                               rationale="fine")
    run = JudgeRun.objects.create(project=project, rubric_version=published, dataset=dataset,
                                  name="live-judge", kind=RunKind.LIVE, model="openai/x",
                                  status=RunStatus.COMPLETED, planned_calls=1)
    judgment = Judgment.objects.create(run=run, item=items[0], criterion_key="correct",
                                       status=JudgmentStatus.FAILED, error_kind="server",
                                       error_message="boom", attempts=5)
    note = rubric_note_add(rubric=rubric, text="tie anchors are vague", criterion_key="correct")
    export = judge_export(run=run, fmt="json", user=owner, force=True)
    membership = Membership.objects.get(project=project, user=member)
    token, raw = token_create(user=owner, project=project, name="ci")
    session = _labelling_session(project, published, dataset, owner)
    rescore = _rescore(project, rubric, draft, dataset, run)
    from apps.calibration.models import OptimizerJob

    job = OptimizerJob.objects.create(rubric=rubric, dataset=dataset, version=draft,
                                      model="openai/x", status="no_gain", budget_calls=10,
                                      start_content=rescore.content,
                                      start_hash=rescore.content_hash)
    return World(project=project, rubric=rubric, published=published, draft=draft,
                 criterion=criterion, dataset=dataset, item=items[0], run=run,
                 imported_run=imported, judgment=judgment, note=note, export=export,
                 membership=membership, token=token, raw_token=raw, session=session,
                 rescore=rescore, optimizer_job=job,
                 import_job=ImportJob.objects.create(
                     project=project, dataset_name=dataset.name, filename="rows.jsonl",
                     fmt="jsonl", status=ImportStatus.DONE, dataset=dataset, summary="Imported"),
                 invitation=invitation_create(project=project, email=f"new@{project.slug}.example",
                                              role=Role.LABELLER, invited_by=owner)[0])


def _rescore(project, rubric, draft, dataset, base):
    """A finished workbench re-score of the draft (its run made no calls)."""
    from apps.calibration.models import Rescore
    from apps.rubrics.selectors import version_content

    run = JudgeRun.objects.create(project=project, rubric_version=draft, dataset=dataset,
                                  name="live-judge (workbench)", kind=RunKind.LIVE,
                                  model="openai/x", status=RunStatus.COMPLETED)
    content = content_mod.validate(version_content(draft))
    return Rescore.objects.create(rubric=rubric, dataset=dataset, version=draft, run=run,
                                  base_run=base, content=content,
                                  content_hash=content_mod.content_hash(content), item_count=0)


def _labelling_session(project, version, dataset, owner) -> LabelingSession:
    """A session over the dataset assigned to every member; a labeller member has labelled
    the first item, so their history and edit pages have a row."""
    members = Membership.objects.filter(project=project).select_related("user").order_by("pk")
    session = session_create(project=project, version=version, dataset=dataset,
                             name="first pass", overlap=1, assignees=[m.user for m in members],
                             selection={"mode": "all"}, user=owner)
    for m in members:
        if m.role == Role.LABELLER:
            claim = label_claim_next(session=session, user=m.user)
            label_submit(session=session, user=m.user, assignment_id=claim.pk,
                         values={"correct": 3, "safe": 1})
    return session
