"""The Celery app. Apps declare tasks with shared_task and never import this module."""

import os

from celery import Celery

from config.startup import load_settings_or_exit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

load_settings_or_exit()  # a bad environment value is one line, not a traceback
app = Celery("rubriclab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
