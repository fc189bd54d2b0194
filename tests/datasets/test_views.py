"""The dataset pages (upload, item browser, item page) and the import endpoint of the API."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse

from apps.datasets.models import Dataset, Item
from apps.judging.models import JudgeRun, RunKind, RunStatus, Verdict
from apps.labeling.models import HumanLabel, LabelSource
from apps.projects.services import token_create
from tests.datasets.test_import import item, jsonl, publish, stored
from tests.factories import DatasetFactory, ItemFactory


def upload_url(slug: str = "acme") -> str:
    return reverse("dataset_upload", kwargs={"slug": slug})


def list_url(dataset, slug: str = "acme") -> str:
    return reverse("dataset_detail", kwargs={"slug": slug, "dataset_id": dataset.pk})


def item_url(it, slug: str = "acme") -> str:
    return reverse("item_detail", kwargs={"slug": slug, "dataset_id": it.dataset_id,
                                          "item_id": it.pk})


def upload(client, data: bytes, *, filename: str = "rows.jsonl", name: str = "data", **fields):
    return client.post(upload_url(), {
        "name": name, "kind": "", "rubric": "", "description": "", **fields,
        "file": SimpleUploadedFile(filename, data),
    })


def make_items(dataset, n: int) -> list[Item]:
    items = [Item(dataset=dataset, external_id=f"item-{i:03d}", position=i,
                  prompt=f"prompt number {i}", response=f"response {i}") for i in range(n)]
    Item.objects.bulk_create(items)
    Dataset.objects.filter(pk=dataset.pk).update(item_count=n)
    dataset.item_count = n
    return list(dataset.items.order_by("position"))


def row_ids(response) -> list[str]:
    """The item ids in the table, in order (the link text of the Id column)."""
    html = response.content.decode()
    return re.findall(r'/items/\d+/">([^<]+)</a>', html)


@pytest.fixture
def dataset(personas):
    return DatasetFactory(project=personas.project, name="cooking")


# -- upload page ------------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "editor"])
def test_owner_and_editor_can_upload_a_file(personas, who):
    client = personas.client(who)
    assert client.get(upload_url()).status_code == 200

    response = upload(client, jsonl(item(1), item(2)))

    dataset = Dataset.objects.get(project=personas.project, name="data")
    assert response.status_code == 302
    assert response["Location"] == list_url(dataset)
    assert dataset.item_count == 2
    assert dataset.created_by == getattr(personas, who)
    page = client.get(response["Location"])
    assert "Imported 2 items into &#x27;data&#x27;." in page.content.decode()


def test_labeller_gets_403_on_upload(personas):
    client = personas.client("labeller")

    assert client.get(upload_url()).status_code == 403
    assert upload(client, jsonl(item(1))).status_code == 403
    assert stored()["datasets"] == 0


def test_outsider_gets_404_on_upload(personas):
    client = personas.client("outsider")

    assert client.get(upload_url()).status_code == 404
    assert upload(client, jsonl(item(1))).status_code == 404
    assert stored()["datasets"] == 0


def test_signed_out_upload_redirects_to_login(personas):
    response = personas.client(None).get(upload_url())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_upload_refuses_other_methods(personas):
    assert personas.client("owner").put(upload_url()).status_code == 405


def test_upload_with_bad_rows_lists_every_problem_and_stores_nothing(personas):
    script = {"id": "<script>alert(1)</script>", "prompt": "p", "response": "r"}
    data = jsonl(item(1), "{broken", {"id": "q3", "prompt": "p"}, item(1), script, script)

    response = upload(personas.client("owner"), data)

    html = response.content.decode()
    assert response.status_code == 422
    assert "Nothing was imported." in html
    assert "4 problem(s); nothing was stored" in html
    assert "line 2: invalid JSON" in html
    assert "line 3, response: missing" in html
    assert "line 4, id: duplicate id &#x27;q1&#x27; in this file" in html
    assert ("line 6, id: duplicate id &#x27;&lt;script&gt;alert(1)&lt;/script&gt;&#x27; in this "
            "file") in html
    assert "<script>alert(1)</script>" not in html
    assert stored() == dict.fromkeys(stored(), 0)


@pytest.mark.parametrize("data, message", [
    (b"", "The submitted file is empty."),  # the form's own check comes first
    (b"\n\n", "file: the file is empty"),
    (b'{"id": "q1", "prompt": "caf\xe9", "response": "r"}\n', "line 1: not UTF-8"),
])
def test_upload_of_an_empty_or_non_utf8_file_says_why(personas, data, message):
    response = upload(personas.client("owner"), data)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert stored()["datasets"] == 0


def test_upload_accepts_csv_with_a_bom_and_quoted_newlines(personas):
    data = b'\xef\xbb\xbfid,prompt,response\nq1,"two\nlines",r\n'

    response = upload(personas.client("owner"), data, filename="rows.csv")

    assert response.status_code == 302
    assert Item.objects.get().prompt == "two\nlines"


def test_upload_of_an_unknown_file_type_is_refused(personas):
    response = upload(personas.client("owner"), jsonl(item(1)), filename="rows.txt")

    assert response.status_code == 422
    assert "use a .jsonl or .csv file" in response.content.decode()


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_upload_over_the_size_limit_is_refused(personas):
    big = jsonl(*[item(i, response="x" * 1000) for i in range(1100)])
    assert len(big) > 1024 * 1024

    response = upload(personas.client("owner"), big)

    assert response.status_code == 413
    assert response.content.decode() == (
        "The upload is larger than this server accepts: the limit is 1 MB "
        "(DATASET_MAX_UPLOAD_MB).\n")
    assert stored()["datasets"] == 0


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_oversized_upload_is_refused_on_its_headers_and_never_spooled(personas, monkeypatch):
    from django.core.files import uploadhandler

    spooled = []
    for handler in (uploadhandler.MemoryFileUploadHandler,
                    uploadhandler.TemporaryFileUploadHandler):
        real = handler.new_file
        monkeypatch.setattr(handler, "new_file",
                            lambda self, *a, _real=real, **k: spooled.append(a) or _real(
                                self, *a, **k))
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    token = _csrf_token(client)
    big = jsonl(*[item(i, response="x" * 1000) for i in range(1100)])

    response = client.post(upload_url(), {"csrfmiddlewaretoken": token, "name": "data",
                                          "file": SimpleUploadedFile("rows.jsonl", big)})

    assert response.status_code == 413  # not 403: refused before CSRF read the body
    assert "1 MB (DATASET_MAX_UPLOAD_MB)" in response.content.decode()
    assert spooled == []


def _csrf_token(client) -> str:
    html = client.get(upload_url()).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_upload_checks_the_csrf_token(personas):
    client = Client(enforce_csrf_checks=True)
    client.force_login(personas.owner)
    form = {"name": "data", "file": SimpleUploadedFile("rows.jsonl", jsonl(item(1)))}

    refused = client.post(upload_url(), form)
    form["file"] = SimpleUploadedFile("rows.jsonl", jsonl(item(1)))
    accepted = client.post(upload_url(), {**form, "csrfmiddlewaretoken": _csrf_token(client)})

    assert refused.status_code == 403
    assert accepted.status_code == 302
    assert Item.objects.count() == 1


def test_upload_with_labels_uses_the_chosen_rubric(personas):
    version = publish(personas.project)
    data = jsonl(item(1, labels=[{"annotator": "ann", "criterion": "correct", "value": 2}]))

    response = upload(personas.client("editor"), data, rubric=version.rubric.slug)

    assert response.status_code == 302
    assert HumanLabel.objects.get().annotator == "ann"


def test_upload_appending_a_different_kind_is_refused(personas, dataset):
    response = upload(personas.client("owner"), jsonl(item(1)), name="cooking", kind="pairwise")

    assert response.status_code == 422
    assert "dataset &#x27;cooking&#x27; is pointwise, not pairwise" in response.content.decode()


# -- item browser -----------------------------------------------------------------------------
@pytest.mark.parametrize("who", ["owner", "editor"])
def test_item_list_works_for_owner_and_editor(personas, dataset, who):
    make_items(dataset, 3)

    response = personas.client(who).get(list_url(dataset))

    assert response.status_code == 200
    assert row_ids(response) == ["item-000", "item-001", "item-002"]


def test_labeller_gets_403_on_the_item_list(personas, dataset):
    make_items(dataset, 3)

    assert personas.client("labeller").get(list_url(dataset)).status_code == 403


def test_outsider_gets_404_on_the_item_list(personas, dataset):
    assert personas.client("outsider").get(list_url(dataset)).status_code == 404


def test_item_list_of_another_projects_dataset_is_404(personas):
    foreign = DatasetFactory(project=personas.other_project)

    response = personas.client("owner").get(list_url(foreign))

    assert response.status_code == 404


def test_item_list_with_a_bad_id_is_404(personas):
    response = personas.client("owner").get(
        reverse("dataset_detail", kwargs={"slug": "acme", "dataset_id": 999999})
    )

    assert response.status_code == 404


def test_item_list_refuses_post(personas, dataset):
    assert personas.client("owner").post(list_url(dataset)).status_code == 405


def test_item_list_page_two_shows_items_51_to_100(personas, dataset):
    make_items(dataset, 120)
    client = personas.client("owner")

    page2 = client.get(list_url(dataset), {"page": 2})
    page3 = client.get(list_url(dataset), {"page": 3})

    assert row_ids(page2) == [f"item-{i:03d}" for i in range(50, 100)]
    html = page2.content.decode()
    assert "<td>51</td>" in html and "<td>100</td>" in html and "<td>101</td>" not in html
    assert "Page 2 of 3" in html
    assert 'href="?page=1"' in html and 'href="?page=3"' in html
    assert row_ids(page3) == [f"item-{i:03d}" for i in range(100, 120)]
    assert 'rel="next"' not in page3.content.decode()


@pytest.mark.parametrize("page", ["0", "-1", "abc", "99999999999"])
def test_item_list_with_a_bad_page_number_shows_page_one(personas, dataset, page):
    make_items(dataset, 3)

    response = personas.client("owner").get(list_url(dataset), {"page": page})

    assert response.status_code == 200
    assert row_ids(response)[0] == "item-000"


def test_item_list_past_the_last_page_is_empty_not_an_error(personas, dataset):
    make_items(dataset, 3)

    response = personas.client("owner").get(list_url(dataset), {"page": 5})

    assert response.status_code == 200
    assert row_ids(response) == []
    assert "No items." in response.content.decode()


def test_item_list_search_finds_text(personas, dataset):
    make_items(dataset, 120)
    Item.objects.filter(dataset=dataset, position=77).update(response="Boil the EGG nine minutes")

    response = personas.client("owner").get(list_url(dataset), {"q": "egg nine"})

    assert row_ids(response) == ["item-077"]


def test_item_list_search_finds_an_id(personas, dataset):
    make_items(dataset, 120)

    response = personas.client("owner").get(list_url(dataset), {"q": "item-042"})

    assert row_ids(response) == ["item-042"]


def test_item_list_search_pages_through_matches(personas, dataset):
    make_items(dataset, 120)
    client = personas.client("owner")

    first = client.get(list_url(dataset), {"q": "prompt number"})
    second = client.get(list_url(dataset), {"q": "prompt number", "page": 2})

    assert len(row_ids(first)) == 50
    assert row_ids(second)[0] == "item-050"
    assert "q=prompt%20number" in first.content.decode()


def test_item_list_search_with_no_match_says_so_escaped(personas, dataset):
    make_items(dataset, 3)

    response = personas.client("owner").get(list_url(dataset), {"q": "<b>nothing</b>"})

    html = response.content.decode()
    assert "No item matches" in html
    assert "<b>nothing</b>" not in html


def _labels_and_verdicts(personas, dataset, items):
    version = publish(personas.project)
    run = JudgeRun.objects.create(project=personas.project, rubric_version=version,
                                  dataset=dataset, name="gpt", kind=RunKind.IMPORTED,
                                  status=RunStatus.COMPLETED)
    for n, it in enumerate(items[:5]):
        for a in range(n):  # item i gets i labels
            HumanLabel.objects.create(item=it, criterion_key="correct", scale_signature="s",
                                      annotator=f"a{a}", value="1", source=LabelSource.IMPORT)
    for it in items[:3]:
        for key in ("correct", "safe"):
            Verdict.objects.create(run=run, item=it, criterion_key=key, value="1")


def test_item_list_counts_labels_and_verdicts_per_item(personas, dataset):
    items = make_items(dataset, 6)
    _labels_and_verdicts(personas, dataset, items)

    response = personas.client("editor").get(list_url(dataset))

    html = response.content.decode()
    assert "<th scope=\"col\">Labels</th>" in html and "<th scope=\"col\">Verdicts</th>" in html
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>.*?</tr>", html, re.S)
    assert rows == ["1", "2", "3", "4", "5", "6"]
    counts = [re.findall(r"<td>(\d+)</td>", row)[1:]
              for row in re.findall(r"<tr>\s*<td>\d+</td>.*?</tr>", html, re.S)]
    assert counts == [["0", "2"], ["1", "2"], ["2", "2"], ["3", "0"], ["4", "0"], ["0", "0"]]


def test_item_list_query_count_is_pinned(personas, dataset, django_assert_max_num_queries):
    items = make_items(dataset, 120)
    _labels_and_verdicts(personas, dataset, items)
    client = personas.client("owner")
    client.get(list_url(dataset))  # warm the session

    with django_assert_max_num_queries(15):
        response = client.get(list_url(dataset), {"page": 1})
    assert response.status_code == 200
    with django_assert_max_num_queries(15):
        client.get(list_url(dataset), {"page": 2, "q": "prompt"})


def test_item_list_htmx_request_gets_only_the_table(personas, dataset):
    make_items(dataset, 3)

    response = personas.client("owner").get(
        list_url(dataset), {"q": "item-001"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="item-table"
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="item-table">')
    assert "<html" not in html
    assert row_ids(response) == ["item-001"]


# -- item page --------------------------------------------------------------------------------
def test_item_page_escapes_text_and_keeps_whitespace(personas, dataset):
    it = ItemFactory(dataset=dataset, position=0,
                     prompt="<script>alert(1)</script>",
                     response="line one\n    indented line\n\n\tafter a blank",
                     reference="<b>bold</b> reference",
                     metadata={"source": "<i>web</i>"})

    response = personas.client("owner").get(item_url(it))

    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert '<pre class="wrap">&lt;script&gt;alert(1)&lt;/script&gt;</pre>' in html
    assert '<pre class="wrap">line one\n    indented line\n\n\tafter a blank</pre>' in html
    assert "&lt;b&gt;bold&lt;/b&gt; reference" in html
    assert "&lt;i&gt;web&lt;/i&gt;" in html
    assert "hx-disable" in html


def test_item_page_of_a_pairwise_item_shows_both_responses(personas):
    dataset = DatasetFactory(project=personas.project, kind="pairwise")
    it = Item.objects.create(dataset=dataset, external_id="p1", position=0, prompt="q",
                             response_a="first <answer>", response_b="second answer")

    html = personas.client("owner").get(item_url(it)).content.decode()

    assert "Response A" in html and "first &lt;answer&gt;" in html
    assert "Response B" in html and "second answer" in html


def test_item_page_links_to_its_neighbours(personas, dataset):
    items = make_items(dataset, 3)

    html = personas.client("owner").get(item_url(items[1])).content.decode()

    assert f'href="{item_url(items[0])}" rel="prev"' in html
    assert f'href="{item_url(items[2])}" rel="next"' in html


def test_labeller_gets_403_on_the_item_page(personas, dataset):
    it = ItemFactory(dataset=dataset)

    assert personas.client("labeller").get(item_url(it)).status_code == 403


def test_outsider_gets_404_on_the_item_page(personas, dataset):
    it = ItemFactory(dataset=dataset)

    assert personas.client("outsider").get(item_url(it)).status_code == 404


def test_item_page_of_an_item_in_another_dataset_is_404(personas, dataset):
    other = DatasetFactory(project=personas.other_project)
    foreign = ItemFactory(dataset=other)
    url = reverse("item_detail", kwargs={"slug": "acme", "dataset_id": dataset.pk,
                                         "item_id": foreign.pk})

    assert personas.client("owner").get(url).status_code == 404


def test_item_page_refuses_post(personas, dataset):
    it = ItemFactory(dataset=dataset)

    assert personas.client("owner").post(item_url(it)).status_code == 405


# -- API --------------------------------------------------------------------------------------
def api_url(name: str = "data", slug: str = "acme") -> str:
    return f"/api/v1/projects/{slug}/datasets/{name}/items"


def api_post(client, token: str, data: bytes, *, url: str | None = None,
             filename: str = "rows.jsonl"):
    return client.post(url or api_url(), {"file": SimpleUploadedFile(filename, data)},
                       HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture
def owner_token(personas) -> str:
    return token_create(user=personas.owner, project=personas.project, name="ci")[1]


def test_api_import_returns_201_with_counts(personas, owner_token):
    publish(personas.project)
    data = jsonl(
        item(1, labels=[{"annotator": "a", "criterion": "correct", "value": 3}],
             judgments=[{"judge": "gpt", "criterion": "correct", "value": 2}]),
        item(2),
    )

    response = api_post(personas.client(None), owner_token, data)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["ok"] is True
    assert (body["items"], body["labels"], body["verdicts"]) == (2, 1, 1)
    assert body["judges"] == ["gpt"]
    assert body["dataset"]["item_count"] == 2 and body["dataset"]["kind"] == "pointwise"
    assert body["problems"] == []


def test_api_import_returns_422_with_problems_and_stores_nothing(personas, owner_token):
    data = jsonl(item(1), item(1), "nope")

    response = api_post(personas.client(None), owner_token, data)

    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False and body["dataset"] is None and body["items"] == 0
    assert body["problems"] == [
        {"line": 2, "field": "id", "message": "duplicate id 'q1' in this file"},
        {"line": 3, "field": "", "message": "invalid JSON: Expecting value (column 1)"},
    ]
    assert stored() == dict.fromkeys(stored(), 0)


def test_api_import_with_a_token_of_another_project_is_404(personas):
    foreign = token_create(user=personas.outsider, project=personas.other_project, name="x")[1]

    response = api_post(personas.client(None), foreign, jsonl(item(1)))

    assert response.status_code == 404
    assert stored()["datasets"] == 0


def test_api_import_with_a_labellers_token_is_403(personas):
    token = token_create(user=personas.labeller, project=personas.project, name="x")[1]

    response = api_post(personas.client(None), token, jsonl(item(1)))

    assert response.status_code == 403
    assert stored()["datasets"] == 0


def test_api_import_without_a_token_is_401(personas):
    response = personas.client(None).post(
        api_url(), {"file": SimpleUploadedFile("rows.jsonl", jsonl(item(1)))}
    )

    assert response.status_code == 401


def test_api_import_of_an_unknown_file_type_is_422(personas, owner_token):
    response = api_post(personas.client(None), owner_token, jsonl(item(1)), filename="rows.xml")

    assert response.status_code == 422
    assert "use a .jsonl or .csv file" in json.dumps(response.json()["problems"])


@override_settings(DATASET_MAX_UPLOAD_MB=1)
def test_api_import_over_the_size_limit_is_413(personas, owner_token):
    big = jsonl(*[item(i, response="x" * 1000) for i in range(1100)])

    response = api_post(personas.client(None), owner_token, big)

    assert response.status_code == 413
    assert "the limit is 1 MB (DATASET_MAX_UPLOAD_MB)" in response.json()["detail"]
    assert stored()["datasets"] == 0
