export DATABASE_URL=postgres://postgres@127.0.0.1:5432/rubriclab_wt11b
export CELERY_BROKER_URL=redis://127.0.0.1:6379/12
export LITELLM_LOCAL_MODEL_COST_MAP=True
