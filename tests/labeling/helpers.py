"""A small labelling world: a published rubric, a dataset and a session over it."""

from __future__ import annotations

from django.urls import reverse

from apps.datasets.models import Dataset, Item, Kind
from apps.labeling.claims import label_claim_next
from apps.labeling.services import label_submit, session_create
from apps.rubrics import content as content_mod
from apps.rubrics.services import rubric_import
from tests.world import POINTWISE

PAIRWISE = {
    "rubric": "preference",
    "name": "Preference",
    "mode": "pairwise",
    "criteria": [{"key": "overall", "name": "Overall", "weight": 1, "scale": {
        "type": "pairwise", "levels": [
            {"value": "A", "label": "A is better", "anchor": "Response A is better."},
            {"value": "B", "label": "B is better", "anchor": "Response B is better."},
            {"value": "tie", "label": "Tie", "anchor": "Neither is clearly better."}]}}],
}
HTMX = {"HTTP_HX_REQUEST": "true"}


def make_version(project, content=POINTWISE):
    _, version, _ = rubric_import(project=project, content=content_mod.validate(content),
                                  publish=True, note="v1")
    return version


def make_dataset(project, *, items: int, kind: str = Kind.POINTWISE, name: str = "answers",
                 metadata=None) -> Dataset:
    dataset = Dataset.objects.create(project=project, name=name, kind=kind, item_count=items)
    Item.objects.bulk_create(
        Item(dataset=dataset, external_id=f"i{n}", position=n, prompt=f"Question {n}?",
             response=f"Answer {n}." if kind == Kind.POINTWISE else "",
             response_a=f"first answer {n}" if kind == Kind.PAIRWISE else "",
             response_b=f"second answer {n}" if kind == Kind.PAIRWISE else "",
             metadata=(metadata(n) if metadata else {}))
        for n in range(items)
    )
    return dataset


def make_session(project, *, assignees, items: int = 6, overlap: int = 1, pairwise=False,
                 selection=None, claim_ttl_s: int = 900, version=None, dataset=None, **kw):
    version = version or make_version(project, PAIRWISE if pairwise else POINTWISE)
    dataset = dataset or make_dataset(project, items=items,
                                      kind=Kind.PAIRWISE if pairwise else Kind.POINTWISE)
    return session_create(project=project, version=version, dataset=dataset,
                          name=kw.pop("name", "pass one"), overlap=overlap,
                          assignees=list(assignees), selection=selection or {"mode": "all"},
                          claim_ttl_s=claim_ttl_s, **kw)


def label_one(session, user, values=None, comment=""):
    """Claim the next item and submit it; returns (assignment, result)."""
    claim = label_claim_next(session=session, user=user)
    assert claim is not None, f"nothing left for {user}"
    values = values or ({"overall": "A"} if session.is_pairwise else {"correct": 2, "safe": 1})
    result = label_submit(session=session, user=user, assignment_id=claim.pk, values=values,
                          comment=comment)
    return claim, result


def url(name: str, session=None, **kwargs) -> str:
    kwargs = {"slug": "acme", **kwargs}
    if session is not None:
        kwargs["session_id"] = session.pk
    return reverse(name, kwargs=kwargs)
