from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "apps.labeling"
    label = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.datasets.counters import register_item_counter
        from apps.labeling.selectors import label_counts

        register_item_counter("labels", label_counts)
