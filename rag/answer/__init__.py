"""The answer step: evidence sentences chosen from the passages, a grounded answer with
citations or a refusal (reader.py), the short answer inside it (span.py), and follow-up
questions made standalone before retrieval (conversation.py)."""

from .conversation import QuestionRewriter, Rewrite, Turn, as_turns
from .reader import REFUSAL, GroundedReader

__all__ = ["REFUSAL", "GroundedReader", "QuestionRewriter", "Rewrite", "Turn", "as_turns"]
