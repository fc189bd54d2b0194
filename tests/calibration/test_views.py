"""The calibration dashboard, its JSON and notes: personas, escaping, query count."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.datasets.models import Dataset
from apps.judging.models import JudgeRun, Verdict
from apps.projects.models import Membership, Project, Role
from apps.rubrics.models import RubricNote

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo_client(demo_loaded, client, django_user_model):
    return _client_for(client, django_user_model, Role.EDITOR, "dash-editor")


def _client_for(client, django_user_model, role, name):
    user = django_user_model.objects.create_user(username=name, password="pw")
    Membership.objects.create(project=Project.objects.get(slug="demo"), user=user, role=role)
    client.force_login(user)
    return client


def _url(rubric="pandalm-preference", **query):
    url = reverse("calibration_dashboard", args=["demo", rubric])
    if query:
        url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    return url


def test_dashboard_shows_kappa_interval_ceiling_and_gate(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    gate_view = demo_client.get(_url(judge=run.pk)).content.decode()
    assert "Does not pass the gate" in gate_view
    assert "Held-out test items only" in gate_view
    response = demo_client.get(_url(judge=run.pk, part="all"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Gate not decided on these items" in html
    assert "0.496" in html  # gpt-3.5-turbo's kappa against the human majority, all items
    assert "alpha 0.864" in html  # the humans' own agreement beside it
    assert 'class="kappa-bar"' in html and "<circle" in html  # the interval over the bands
    assert "almost perfect" in html and "moderate" in html
    assert 'class="heatmap"' in html and ">360<" not in html.split('class="heatmap"')[0]


def test_dashboard_query_count_is_pinned(demo_client, django_assert_max_num_queries):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    other = JudgeRun.objects.get(project__slug="demo", name="PandaLM-7B")
    for first in (_url(judge=run.pk), _url("hanna-stories")):
        with django_assert_max_num_queries(26):  # the first use draws the split: a few writes
            assert demo_client.get(first).status_code == 200
    # Each report looks up its judge's latest probe run once (the robustness section).
    with django_assert_max_num_queries(22):
        assert demo_client.get(_url(judge=run.pk, compare=other.pk)).status_code == 200
    with django_assert_max_num_queries(21):
        assert demo_client.get(_url("hanna-stories")).status_code == 200


def test_two_judges_side_by_side(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    other = JudgeRun.objects.get(project__slug="demo", name="PandaLM-7B")
    html = demo_client.get(_url(judge=run.pk, compare=other.pk, part="all")).content.decode()
    assert "Side by side with PandaLM-7B" in html
    assert "0.435" in html
    assert "Is the difference real?" in html and "On the 999 items both judged" in html
    data = demo_client.get(reverse("calibration_json", args=["demo", "pandalm-preference"]),
                           {"judge": run.pk, "compare": other.pk, "part": "all"}).json()
    diff = data["comparison"]["criteria"]["overall"]
    assert data["comparison"]["with"]["name"] == "PandaLM-7B" and diff["n"] == 999
    assert diff["difference"] == pytest.approx(0.4958 - 0.4354, abs=1e-3)
    assert diff["ci95"][0] < diff["difference"] < diff["ci95"][1]


def test_hanna_page_says_texts_are_absent_and_humans_disagree(demo_client):
    html = demo_client.get(_url("hanna-stories")).content.decode()
    assert "too low a ceiling" in html
    assert "ICC1" in html


def test_disagreements_escape_what_a_model_wrote(demo_client):
    from apps.calibration.models import SplitItem

    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    demo_client.get(_url(judge=run.pk))  # the first look draws the split
    dev = SplitItem.objects.filter(split__dataset=run.dataset, part="dev").values("item_id")
    # Disagreements are listed from development items only.
    verdict = (Verdict.objects.filter(run=run, item_id__in=dev).exclude(value="tie")
               .order_by("item_id").select_related("item").first())
    # Make this the first full disagreement (A against B), with a hostile rationale.
    verdict.item.human_labels.update(value="B" if verdict.value == "A" else "A")
    Verdict.objects.filter(pk=verdict.pk).update(
        rationale='<script>alert(1)</script><img src=x onerror=alert(2)>'
                  '<div hx-get="/evil" hx-trigger="load">x</div>')
    html = demo_client.get(_url(judge=run.pk, criterion="overall")).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert 'hx-get="/evil"' not in html
    assert "<div hx-disable>" in html


def test_noting_a_disagreement_collects_it_on_the_rubric(demo_client):
    response = demo_client.post(reverse("calibration_note", args=["demo", "pandalm-preference"]),
                                {"text": "Anchor for tie is vague", "criterion": "overall",
                                 "source": "item 7", "back": "https://evil.example/"})
    assert response.status_code == 302
    assert response["Location"] == _url()  # an outside "back" is ignored
    note = RubricNote.objects.get(rubric__slug="pandalm-preference")
    assert (note.text, note.criterion_key, note.source) == ("Anchor for tie is vague", "overall",
                                                           "item 7")
    page = demo_client.get(reverse("rubric_detail", args=["demo", "pandalm-preference"]))
    assert "Anchor for tie is vague" in page.content.decode()


def test_labeller_cannot_see_calibration_or_write_notes(demo_loaded, client, django_user_model):
    labeller = _client_for(client, django_user_model, Role.LABELLER, "dash-labeller")
    assert labeller.get(_url()).status_code == 403
    assert labeller.get(reverse("calibration_json", args=["demo", "pandalm-preference"])
                        ).status_code == 403
    assert labeller.post(reverse("calibration_note", args=["demo", "pandalm-preference"]),
                         {"text": "x"}).status_code == 403
    assert not RubricNote.objects.exists()


def test_json_matches_the_command_contract(demo_client):
    ds = Dataset.objects.get(project__slug="demo", name="PandaLM test set")
    run = JudgeRun.objects.get(dataset=ds, name="PandaLM-7B")
    data = demo_client.get(reverse("calibration_json", args=["demo", "pandalm-preference"]),
                           {"dataset": ds.pk, "judge": run.pk, "part": "all"}).json()
    assert data["judge"]["name"] == "PandaLM-7B"
    assert round(data["criteria"]["overall"]["kappa"], 4) == 0.4354
    assert data["items"]["part"] == "all" and data["items"]["decides_gate"] is False


def test_wrong_method_and_unknown_rubric(demo_client):
    assert demo_client.post(_url()).status_code == 405
    assert demo_client.get(_url("no-such-rubric")).status_code == 404


def test_disagreements_can_be_sent_to_a_labelling_session(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    html = demo_client.get(_url(judge=run.pk)).content.decode()
    link = re.search(r'href="(/p/demo/labelling/new/\?[^"]+)"', html).group(1).replace("&amp;",
                                                                                        "&")
    form = demo_client.get(link)
    assert form.status_code == 200
    page = form.content.decode()
    assert re.search(r'value="disagree"[^>]*checked', page)
    assert re.search(rf'<option value="{run.pk}" selected', page)
    assert "Disagreements with gpt-3.5-turbo" in page



def test_one_disagreement_can_be_sent_to_a_labelling_session(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    html = demo_client.get(_url(judge=run.pk)).content.decode()
    links = re.findall(r'href="(/p/demo/labelling/new/\?mode=items[^"]+)"', html)
    assert len(links) == 25  # one per row of the first page
    form = demo_client.get(links[0].replace("&amp;", "&"))
    assert form.status_code == 200
    page = form.content.decode()
    assert re.search(r'value="items"[^>]*checked', page)
    external_id = re.search(r'Label again: item ([^"<]+)"', page).group(1)
    assert re.search(rf'<textarea name="items"[^>]*>\s*{re.escape(external_id)}</textarea>',
                     page)


def test_landis_koch_words_stand_beside_every_kappa(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    other = JudgeRun.objects.get(project__slug="demo", name="PandaLM-7B")
    html = demo_client.get(_url(judge=run.pk, compare=other.pk, part="all")).content.decode()
    # The annotators' pair kappas (0.85 / 0.88 / 0.86), Fleiss' kappa, each annotator...
    pairs = re.findall(r'<th scope="row">Kappa [^<]+ ~ [^<]+</th><td>(0\.\d+) '
                       r'<small class="muted">([a-z ]+)</small>', html)
    assert len(pairs) == 3 and {words for _, words in pairs} == {"almost perfect"}
    assert re.search(r'Fleiss 0\.864 <small class="muted">almost perfect</small>', html)
    vs = re.findall(r'<th scope="row">Judge vs [^<]+</th><td>(-?0\.\d+) ([a-z ]+) <small', html)
    assert len(vs) == 3 and all(words.strip() in ("fair", "moderate", "substantial")
                                for _, words in vs)
    # ... and both judges side by side.
    assert re.search(r'<th scope="row">kappa</th><td>0\.496 moderate</td><td>0\.435 moderate',
                     html)


def test_the_api_gives_the_same_json_as_the_command(demo_loaded, client, django_user_model):
    import io
    import json

    from django.core.management import call_command

    from apps.projects.services import token_create

    user = django_user_model.objects.create_user(username="api-reader", password="pw")
    project = Project.objects.get(slug="demo")
    Membership.objects.create(project=project, user=user, role=Role.EDITOR)
    _, token = token_create(user=user, project=project, name="ci")
    out = io.StringIO()
    call_command("calibration_report", "--project", "demo", "--rubric", "pandalm-preference",
                 "--dataset", "PandaLM test set", "--judge", "PandaLM-7B", stdout=out)
    command = json.loads(out.getvalue())
    response = client.get("/api/v1/projects/demo/rubrics/pandalm-preference/calibration",
                          {"dataset": "PandaLM test set", "judge": "PandaLM-7B"},
                          HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200
    api = response.json()
    command.pop("generated_at"), api.pop("generated_at")
    # Each of them is a look at the test split, recorded: the API's is one more.
    assert api.pop("test_looks")["looks"] == command.pop("test_looks")["looks"] + 1
    assert api == command
    assert api["items"]["part"] == "test" and api["items"]["decides_gate"] is True
    everything = client.get("/api/v1/projects/demo/rubrics/pandalm-preference/calibration",
                            {"dataset": "PandaLM test set", "judge": "PandaLM-7B",
                             "part": "all"}, HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert round(everything["criteria"]["overall"]["kappa"], 4) == 0.4354
    bad_part = client.get("/api/v1/projects/demo/rubrics/pandalm-preference/calibration",
                          {"dataset": "PandaLM test set", "part": "train"},
                          HTTP_AUTHORIZATION=f"Bearer {token}")
    assert bad_part.status_code == 422 and "part: one of test, dev, all" in bad_part.json()[
        "detail"]
    missing = client.get("/api/v1/projects/demo/rubrics/pandalm-preference/calibration",
                         {"dataset": "PandaLM test set", "judge": "no-such-judge"},
                         HTTP_AUTHORIZATION=f"Bearer {token}")
    assert missing.status_code == 404 and "no judge 'no-such-judge'" in missing.json()["detail"]
    no_dataset = client.get("/api/v1/projects/demo/rubrics/pandalm-preference/calibration",
                            {"dataset": "PandaLM tset set"}, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert no_dataset.status_code == 404
    assert no_dataset.json()["detail"].startswith("no dataset 'PandaLM tset set' in project "
                                                  "'demo'; datasets: ")
    assert "PandaLM test set" in no_dataset.json()["detail"]


def test_the_dashboard_leads_an_editor_to_exporting_the_judge(demo_client):
    run = JudgeRun.objects.get(project__slug="demo", name="gpt-3.5-turbo")
    html = demo_client.get(_url(judge=run.pk)).content.decode()
    link = re.search(r'href="(/p/demo/exports/new/\?run=\d+)">Export this judge \(marked '
                     r'uncalibrated\)<', html).group(1)
    assert link.endswith(f"?run={run.pk}")
    form = demo_client.get(link).content.decode()
    assert re.search(rf'<option value="{run.pk}" selected', form)
    assert 'href="/p/demo/exports/?rubric=pandalm-preference"' in html

