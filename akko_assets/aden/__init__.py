"""ADEN: natural-language questions over the curated layer, answered through the governed executor.

Offline by default (a deterministic semantic parser over the semantic catalog); an
OpenAI-compatible LLM endpoint is used when AKKO_LLM_BASE_URL is set, with the parser as fallback.
"""

from akko_assets.aden.errors import Refusal
from akko_assets.aden.service import NO_CATALOG, Aden, Answer, ask, ask_command

__all__ = ["NO_CATALOG", "Aden", "Answer", "Refusal", "ask", "ask_command"]
