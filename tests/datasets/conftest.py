from tests.realparts import start_worker  # noqa: F401 (pytest fixture)
