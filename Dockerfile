# RubricLab production image: gunicorn for the web, the same image for Celery worker and beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    RUBRICLAB_VAR_DIR=/app/var

WORKDIR /app
COPY pyproject.toml README.md ./
COPY apps ./apps
COPY config ./config
COPY tools ./tools
RUN pip install --no-cache-dir .
COPY . .
# collectstatic needs a SECRET_KEY to import settings; this one is never used at run time.
RUN SECRET_KEY=collectstatic-only-$(python -c "import secrets; print(secrets.token_hex(32))") \
    python manage.py collectstatic --noinput \
 && useradd --system --home /app rubriclab && mkdir -p /app/var && chown -R rubriclab /app/var
USER rubriclab
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
