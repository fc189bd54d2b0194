from tests.realparts import fake, fakellm, start_worker  # noqa: F401 (pytest fixtures)
