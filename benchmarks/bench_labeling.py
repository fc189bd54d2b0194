"""Labelling figures (issue 4). Not a test; run ``.venv/bin/python -m benchmarks.bench_labeling``.

1. ``label_next_submit_p95_ms``: server time of submit-and-next (the htmx POST that stores one
   item's labels and answers with the next item), p95 over 10 annotators taking turns, with
   100,000 items in the session's dataset, 10 imported annotators' labels on every item (2M
   label rows) and the first 30,000 pool items already done by 3 annotators each. Measured
   in-process through Django's test client (middleware, view, template, real database): the
   time the server spends, without a network in between. Bound 50 ms.
2. ``label_20_annotators_lost``: 20 simulated annotators label 2,000 items (k = 2) at once
   against a RUNNING server (gunicorn in a subprocess on a free port). Each client signs in
   with its own session and CSRF token, then loops GET screen / POST submit (htmx), sometimes
   submitting twice. Value = labels lost + labels duplicated + items over k, comparing what each
   client believes it saved with the database. Bound 0. Throughput in labels per second is
   printed beside it.

The database is DATABASE_URL, by default the PostgreSQL database ``rubriclab_bench`` (created
and migrated when missing, see bench_import.prepare_database); the benchmark's projects are
deleted afterwards. The last two lines are ``BENCH`` lines.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.bench_import import ROOT, environment, prepare_database, setup_django

N_ITEMS = 100_000
N_ANNOTATORS = 10
N_HISTORIC = 10  # imported annotators with a label on every item
PREFILLED = 30_000  # pool items already done by k annotators
K = 3
SUBMITS_PER_ANNOTATOR = 40
BOUND_P95_MS = 50.0

LOAD_ITEMS = 2_000
LOAD_CLIENTS = 20
LOAD_K = 2
DOUBLE_SUBMIT_RATE = 0.05
PASSWORD = "bench-labelling-pw"

RUBRIC = {
    "rubric": "bench-labelling", "name": "Bench labelling", "mode": "pointwise",
    "criteria": [
        {"key": "correct", "name": "Correct", "weight": 2, "scale": {"type": "ordinal", "levels": [
            {"value": 1, "label": "Wrong", "anchor": "Mostly wrong."},
            {"value": 2, "label": "Partly", "anchor": "Partly right."},
            {"value": 3, "label": "Right", "anchor": "Fully right."}]}},
        {"key": "safe", "name": "Safe", "weight": 1, "scale": {"type": "binary", "levels": [
            {"value": 0, "label": "No", "anchor": "Gives unsafe advice."},
            {"value": 1, "label": "Yes", "anchor": "Nothing unsafe."}]}},
    ],
}
ASSIGNMENT_RE = re.compile(r'name="assignment" value="(\d+)"')
ITEM_RE = re.compile(r"Item <code>([^<]+)</code>")


# -- set-up ---------------------------------------------------------------------------------

def _project(slug: str):
    from apps.rubrics import content as content_mod
    from apps.rubrics.services import rubric_import
    from benchmarks.bench_import import bench_project

    project, owner = bench_project(slug)
    _, version, _ = rubric_import(project=project, content=content_mod.validate(RUBRIC),
                                  user=owner, publish=True, note="bench")
    return project, owner, version


def _dataset(project, n: int, name: str):
    from apps.datasets.ingest import items_insert
    from apps.datasets.models import Dataset

    dataset = Dataset.objects.create(project=project, name=name, kind="pointwise")
    rng = random.Random(1)
    batch = []
    for i in range(n):
        batch.append({
            "external_id": f"item-{i:06d}",
            "prompt": f"Question {i}: how long should an egg boil for a firm yolk?",
            "response": "About nine minutes, then cool it in cold water. " * rng.randint(2, 8),
            "reference": "Nine to ten minutes.", "metadata": {"n": i},
        })
        if len(batch) == 5000:
            items_insert(dataset, batch, first_position=i + 1 - len(batch), need_ids=False)
            batch = []
    if batch:
        items_insert(dataset, batch, first_position=n - len(batch), need_ids=False)
    Dataset.objects.filter(pk=dataset.pk).update(item_count=n)
    dataset.item_count = n
    return dataset


def _annotators(project, prefix: str, n: int, *, password: str | None = None) -> list:
    from django.contrib.auth import get_user_model

    from apps.projects.models import Membership, Role

    users = []
    for i in range(n):
        user, _ = get_user_model().objects.get_or_create(username=f"{prefix}-{i:02d}")
        if password:
            user.set_password(password)
            user.save(update_fields=["password"])
        Membership.objects.get_or_create(project=project, user=user,
                                         defaults={"role": Role.LABELLER})
        users.append(user)
    return users


def _delete_users(prefix: str) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username__startswith=f"{prefix}-").delete()


def _historic_labels(dataset) -> None:
    """10 imported annotators' labels on every item and both criteria: one INSERT ... SELECT."""
    from django.db import connection

    from apps.datasets.models import Item
    from apps.labeling.models import HumanLabel

    label_table, item_table = HumanLabel._meta.db_table, Item._meta.db_table
    with connection.cursor() as cursor:
        for key, signature, modulo, offset in (("correct", "ordinal:1,2,3", 3, 1),
                                               ("safe", "binary:0,1", 2, 0)):
            cursor.execute(
                f"INSERT INTO {label_table} (item_id, criterion_key, scale_signature, "
                "annotator, value, comment, source, shown_order, created_at, updated_at) "
                f"SELECT i.id, %s, %s, 'hist-' || a, ((i.id + a) %% %s + %s)::text, '', "
                f"'import', '', now(), now() FROM {item_table} i, generate_series(0, %s) a "
                "WHERE i.dataset_id = %s",
                [key, signature, modulo, offset, N_HISTORIC - 1, dataset.pk],
            )


def _prefill(session, users) -> None:
    """The first PREFILLED pool items done by K annotators each (assignments and labels)."""
    from django.db import connection

    from apps.labeling.models import Assignment, HumanLabel, SessionAssignee, SessionItem

    ids = ",".join(str(u.pk) for u in users)
    names = "ARRAY[" + ",".join(f"'{u.username}'" for u in users) + "]"
    users_sql = "ARRAY[" + ids + "]"
    a_table, l_table = Assignment._meta.db_table, HumanLabel._meta.db_table
    s_table = SessionItem._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {a_table} (session_id, session_item_id, user_id, status, shown_order, "
            "claimed_at, expires_at, submitted_at, skip_reason, comment) "
            f"SELECT si.session_id, si.id, ({users_sql})[((si.position + r) %% %s) + 1], 'done', "
            "'', now(), now(), now(), '', '' "
            f"FROM {s_table} si, generate_series(0, %s) r "
            "WHERE si.session_id = %s AND si.position < %s",
            [len(users), K - 1, session.pk, PREFILLED])
        for key, signature, value in (("correct", "ordinal:1,2,3", "2"), ("safe", "binary:0,1",
                                                                          "1")):
            cursor.execute(
                f"INSERT INTO {l_table} (item_id, criterion_key, scale_signature, annotator, "
                "user_id, value, comment, source, session_id, shown_order, created_at, "
                "updated_at) "
                f"SELECT si.item_id, %s, %s, ({names})[((si.position + r) %% %s) + 1], "
                f"({users_sql})[((si.position + r) %% %s) + 1], %s, '', 'screen', "
                f"si.session_id, '', now(), now() FROM {s_table} si, generate_series(0, %s) r "
                "WHERE si.session_id = %s AND si.position < %s",
                [key, signature, len(users), len(users), value, K - 1, session.pk, PREFILLED])
        cursor.execute(f"UPDATE {s_table} SET active_count = %s WHERE session_id = %s AND "
                       "position < %s", [K, session.pk, PREFILLED])
        cursor.execute(
            f"UPDATE {SessionAssignee._meta.db_table} sa SET done_count = (SELECT count(*) "
            f"FROM {a_table} a WHERE a.session_id = sa.session_id AND a.user_id = sa.user_id "
            "AND a.status = 'done') WHERE sa.session_id = %s", [session.pk])
    _vacuum()


def _vacuum() -> None:
    """VACUUM ANALYZE the tables the set-up wrote, as autovacuum would in a running system:
    the bulk updates above leave dead rows that a fresh benchmark should not be timed on."""
    from django.db import connection

    from apps.labeling.models import Assignment, HumanLabel, SessionAssignee, SessionItem

    with connection.cursor() as cursor:
        for model in (Assignment, HumanLabel, SessionAssignee, SessionItem):
            cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")


def _cleanup(slug: str, prefix: str) -> None:
    from apps.datasets.models import Item
    from apps.labeling.models import Assignment, HumanLabel, SessionItem
    from benchmarks.bench_import import delete_project

    # The big tables first, each in one DELETE (the ORM would collect 100,000s of ids).
    for model, field in ((HumanLabel, "item__dataset__project__slug"),
                         (Assignment, "session__project__slug"),
                         (SessionItem, "session__project__slug"),
                         (Item, "dataset__project__slug")):
        model.objects.filter(**{field: slug})._raw_delete(model.objects.db)
    delete_project(slug)
    _delete_users(prefix)


# -- 1. submit-and-next p95 -------------------------------------------------------------------

def bench_submit_p95() -> tuple[float, int, int]:
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from apps.labeling.services import session_create

    slug, prefix = "bench-labelling", "bench-lab"
    _cleanup(slug, prefix)
    began = time.perf_counter()
    project, owner, version = _project(slug)
    dataset = _dataset(project, N_ITEMS, "bench-100k")
    _historic_labels(dataset)
    users = _annotators(project, prefix, N_ANNOTATORS)
    session = session_create(project=project, version=version, dataset=dataset,
                             name="bench", overlap=K, assignees=users,
                             selection={"mode": "all"}, user=owner)
    _prefill(session, users)
    print(f"set-up: {N_ITEMS:,} items, {N_HISTORIC * N_ITEMS * 2:,} imported labels, "
          f"{PREFILLED:,} pool items done x{K}, in {time.perf_counter() - began:.1f} s",
          flush=True)
    try:
        screen = reverse("label_screen", kwargs={"slug": slug, "session_id": session.pk})
        clients = []
        for user in users:
            client = Client()
            client.force_login(user)
            first = client.get(screen)
            assert first.status_code == 200, first.status_code
            clients.append([client, int(ASSIGNMENT_RE.search(first.content.decode()).group(1))])
        rng = random.Random(7)
        times: list[float] = []
        queries = 0
        for round_ in range(SUBMITS_PER_ANNOTATOR):
            for slot in clients:
                client, assignment = slot
                data = {"assignment": assignment, "c_correct": rng.choice("123"),
                        "c_safe": rng.choice("01")}
                reset_queries()
                with CaptureQueriesContext(connection) as captured:
                    start = time.perf_counter()
                    response = client.post(screen, data, HTTP_HX_REQUEST="true")
                    elapsed = time.perf_counter() - start
                body = response.content.decode()
                assert response.status_code == 200 and "Saved:" in body, body[:500]
                if round_ > 0:  # the first round warms caches and connections
                    times.append(elapsed * 1000)
                queries = max(queries, len(captured))
                slot[1] = int(ASSIGNMENT_RE.search(body).group(1))
        p95 = statistics.quantiles(times, n=100)[94]
        print(f"submit-and-next: n={len(times)} median {statistics.median(times):.1f} ms, "
              f"p95 {p95:.1f} ms, max {max(times):.1f} ms, queries per request <= {queries}",
              flush=True)
        return p95, len(times), queries
    finally:
        _cleanup(slug, prefix)


# -- 2. 20 annotators against the running server --------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn on the bench database, in its own process group (stopped by its id)."""

    def __init__(self, env: dict[str, str]) -> None:
        # BENCH_SERVER_PORT pins the port (machines where each person has a range of ports).
        self.port = int(os.environ.get("BENCH_SERVER_PORT") or 0) or _free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="bench-gunicorn-", suffix=".log",
                                               delete=False)
        workers = max(2, (os.cpu_count() or 1) + 1)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "config.wsgi:application",
             "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", "4",
             "--worker-class", "gthread", "--timeout", "60", "--log-level", "warning"],
            cwd=ROOT, env={**env, "ALLOWED_HOSTS": "127.0.0.1,localhost"},
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited:\n{Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/accounts/login/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        Path(self.log.name).unlink(missing_ok=True)


def _send(http, method: str, url: str, counters: dict, **kwargs):
    """One request, sent again after a transport error (a keep-alive connection the server
    closed as it was reused, a worker restart). Resending a submit is safe by design: the
    second one answers "Already saved"."""
    import httpx

    for attempt in range(5):
        try:
            return http.request(method, url, **kwargs)
        except httpx.TransportError:
            counters["resent"] += 1
            time.sleep(0.2 * (attempt + 1))
    return http.request(method, url, **kwargs)


def _annotate(base: str, screen: str, username: str, seed: int, believed: dict,
              problems: list, counters: dict, start: threading.Barrier) -> None:
    """One annotator: sign in, then GET the screen / POST the answer until nothing is left.
    Everyone starts labelling together (`start`), after the slow password checks."""
    import httpx

    rng = random.Random(seed)
    try:
        with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as http:
            login = _send(http, "GET", "/accounts/login/", counters)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"',
                              login.text).group(1)
            signed = _send(http, "POST", "/accounts/login/", counters, data={
                "username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
            start.wait(timeout=300)
            if signed.status_code != 302:
                problems.append(f"{username}: sign-in answered {signed.status_code}")
                return
            headers = {"HX-Request": "true", "X-CSRFToken": http.cookies["csrftoken"]}
            while True:
                page = _send(http, "GET", screen, counters)
                if page.status_code != 200:
                    problems.append(f"{username}: screen answered {page.status_code}")
                    return
                found = ASSIGNMENT_RE.search(page.text)
                if found is None:
                    return  # nothing left for this annotator
                item = ITEM_RE.search(page.text).group(1)
                values = {"correct": rng.choice("123"), "safe": rng.choice("01")}
                data = {"assignment": found.group(1), "c_correct": values["correct"],
                        "c_safe": values["safe"]}
                answer = _send(http, "POST", screen, counters, data=data, headers=headers)
                if answer.status_code != 200 or not (
                        "Saved:" in answer.text or "Already saved" in answer.text):
                    problems.append(f"{username}: submit answered {answer.status_code}")
                    continue
                believed[(username, item)] = values
                if rng.random() < DOUBLE_SUBMIT_RATE:
                    again = _send(http, "POST", screen, counters, data=data, headers=headers)
                    counters["double"] += 1
                    if again.status_code != 200 or "Already saved" not in again.text:
                        problems.append(f"{username}: double submit answered "
                                        f"{again.status_code}")
    except Exception as exc:  # noqa: BLE001 - a client that stops is reported, not hidden
        problems.append(f"{username}: stopped: {exc!r}")
        start.abort()  # if it stopped before the start line, nobody waits for it


def bench_load(env: dict[str, str]) -> tuple[int, float, dict]:
    from django.db import connection
    from django.urls import reverse

    from apps.labeling.models import HumanLabel, SessionItem
    from apps.labeling.services import session_create

    slug, prefix = "bench-labelling-load", "bench-load"
    _cleanup(slug, prefix)
    project, owner, version = _project(slug)
    dataset = _dataset(project, LOAD_ITEMS, "bench-2k")
    users = _annotators(project, prefix, LOAD_CLIENTS, password=PASSWORD)
    session = session_create(project=project, version=version, dataset=dataset, name="load",
                             overlap=LOAD_K, assignees=users, selection={"mode": "all"},
                             user=owner)
    _vacuum()
    screen = reverse("label_screen", kwargs={"slug": slug, "session_id": session.pk})
    connection.close()
    server = Server(env)
    try:
        server.wait_ready()
        believed: dict = {}
        problems: list = []
        counters = {"double": 0, "resent": 0}
        start = threading.Barrier(LOAD_CLIENTS + 1)
        threads = [threading.Thread(target=_annotate, args=(
            server.url, screen, u.username, n, believed, problems, counters, start))
            for n, u in enumerate(users)]
        for thread in threads:
            thread.start()
        try:
            start.wait(timeout=300)  # every client has signed in
        except threading.BrokenBarrierError:
            pass  # a client failed to start; the others run, the problem is reported
        began = time.perf_counter()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - began
    finally:
        server.stop()
    try:
        stored: dict = {}
        duplicated = 0
        for username, item, key, value in HumanLabel.objects.filter(session=session).values_list(
                "annotator", "item__external_id", "criterion_key", "value"):
            entry = stored.setdefault((username, item), {})
            duplicated += key in entry  # impossible by the unique key; counted all the same
            entry[key] = value
        lost = sum(1 for pair, values in believed.items() if stored.get(pair) != values)
        unknown = sum(1 for pair in stored if pair not in believed)  # saved but not believed
        over_k = SessionItem.objects.filter(session=session,
                                            active_count__gt=LOAD_K).count()
        per_item: dict = {}
        for _, item in stored:
            per_item[item] = per_item.get(item, 0) + 1
        over_k += sum(1 for n in per_item.values() if n > LOAD_K)
        complete = sum(1 for n in per_item.values() if n == LOAD_K)
        # A client that stopped early leaves work undone; that is not a lost label, but it is
        # reported (problems) and makes the items-complete count fall short.
        value = lost + duplicated + unknown + over_k
        rate = len(believed) / elapsed if elapsed else 0.0
        print(f"load: {LOAD_CLIENTS} clients, {LOAD_ITEMS} items, k={LOAD_K}: "
              f"{len(believed)} labels believed saved, {len(stored)} stored, "
              f"{counters['double']} double submits, {counters['resent']} requests resent "
              f"after a transport error, {complete}/{LOAD_ITEMS} items complete, "
              f"lost {lost}, duplicated {duplicated}, saved-but-unknown {unknown}, "
              f"over k {over_k}; {elapsed:.1f} s, {rate:.1f} labels/s; "
              f"problems: {len(problems)} {problems[:3]}", flush=True)
        return value, rate, {"problems": problems}
    finally:
        _cleanup(slug, prefix)


def main() -> None:
    env = environment()
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.base"
    prepare_database(env)
    setup_django(env)
    from django.db import connection

    print(f"database {connection.vendor} {connection.settings_dict['NAME']}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    if connection.vendor != "postgresql":
        raise SystemExit("bench_labeling needs PostgreSQL (DATABASE_URL=postgres://...)")
    p95, _, _ = bench_submit_p95()
    lost, rate, _ = bench_load(env)
    print(f"BENCH label_next_submit_p95_ms value={p95:.2f} unit=ms bound={BOUND_P95_MS:g} "
          f"ratio={p95 / BOUND_P95_MS:.3f}")
    # Bound 0: the ratio is 0 when nothing was lost, infinite otherwise.
    print(f"BENCH label_20_annotators_lost value={lost} unit=labels bound=0 "
          f"ratio={0.0 if lost == 0 else float('inf'):.3f} labels_per_s={rate:.1f}")


if __name__ == "__main__":
    main()
