from django.apps import AppConfig


class JudgingConfig(AppConfig):
    name = "apps.judging"
    label = "judging"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.datasets.counters import register_item_counter
        from apps.judging.selectors import verdict_counts

        # Verdict counts reveal that a judge has spoken: hidden from labellers.
        register_item_counter("verdicts", verdict_counts, sensitive=True)
