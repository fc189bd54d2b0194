import os

from django.core.wsgi import get_wsgi_application

from config.startup import load_settings_or_exit, refuse_without_static_manifest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
load_settings_or_exit()
refuse_without_static_manifest()
application = get_wsgi_application()
