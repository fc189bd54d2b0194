"""Fake OpenAI-compatible chat-completions server for tests and benchmarks.

Run it with ``python -m tools.fakellm --port 0``; from Python use
``tools.fakellm.runner.running_fakellm``; to predict its verdicts use
``tools.fakellm.verdicts.choose_value``.
"""

from tools.fakellm.settings import Settings
from tools.fakellm.verdicts import choose_value

__all__ = ["Settings", "choose_value"]
