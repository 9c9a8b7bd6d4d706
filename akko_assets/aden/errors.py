"""ADEN's refusal: a question it will not answer, with the reason in one line."""

from __future__ import annotations


class Refusal(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(str(reason).split()))

    @property
    def reason(self) -> str:
        return str(self)
