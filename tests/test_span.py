"""The short answer: the phrase of an answer sentence that answers a typed question."""

from __future__ import annotations

import pytest

from rag.answer.reader import GroundedReader
from rag.answer.span import asks_why, kind_of, reason_clause, short_answer

PUTIN = "On Friday, Putin arrived in Beijing to attend the opening ceremony of the 2022 Winter Olympics."


@pytest.mark.parametrize("question, kind", [
    ("How many points did the Panthers defense surrender?", "number"),
    ("What was the percentage of households with children?", "number"),
    ("When was the colony of New South Wales founded?", "date"),
    ("In what year did Tesla die?", "date"),
    ("Who is the General Manager for the Broncos?", "name"),
    ("Where was the steam engine indicator shown?", "place"),
    ("In 2010, who won the cup?", "name"),
    ("Why are ctenophores rare as fossils?", "other"),
])
def test_question_kinds(question, kind):
    assert kind_of(question) == kind


@pytest.mark.parametrize("question, text, expected", [
    ("Who is the General Manager for the Broncos?", "The General Manager for the Broncos is John Elway.",
     "John Elway"),
    ("How many points did the Panthers defense surrender?",
     "The Panthers defense gave up just 308 points, ranking sixth in the league.", "308"),
    ("How many agreements were signed?", "The two sides signed 15 agreements on trade.", "15"),
    ("How old was Manning when he played Super Bowl 50?",
     "He is also the oldest quarterback ever to play in a Super Bowl at age 39.", "39"),
    ("When was the colony of New South Wales founded?",
     "After the founding of the colony of New South Wales in 1788, Australia was divided.", "1788"),
    ("When did Putin arrive in Beijing?", PUTIN, "Friday"),
    ("Where was the Charles Porter steam engine indicator shown?",
     "The Charles Porter steam engine indicator was shown at the London Exhibition.", "London Exhibition"),
])
def test_short_answers(question, text, expected):
    assert short_answer(question, text) == expected


def test_nothing_of_the_asked_kind_gives_none():
    assert short_answer("How many people came?", "Nobody knows who came to the meeting.") is None
    assert short_answer("When did it start?", "") is None


def test_the_reader_headlines_typed_answers_only(assistant):
    from rag.answer.reader import GroundedReader

    assert GroundedReader.short("Which city did Putin arrive in?", "", f"{PUTIN} [1]") == ""  # "other"
    # the model's copied phrase headlines an "other" question; a typed one keeps its typed part
    assert GroundedReader.short("Which games did Putin attend?", "2022 Winter Olympics",
                                f"{PUTIN} [1]") == "2022 Winter Olympics"
    assert GroundedReader.short("When did Putin arrive?", "", f"{PUTIN} [1]") == "Friday"
    answer = assistant.ask("Who did Putin meet in Beijing?")
    assert not answer.refused and answer.short and answer.short in answer.text


@pytest.mark.parametrize("question, sentence, reason", [
    ("Why did Putin travel to Beijing?",
     "On Friday, Putin arrived in Beijing to attend the opening ceremony of the 2022 Winter Olympics.",
     "to attend the opening ceremony of the 2022 Winter Olympics"),
    ("Why did Harvard end its early admission program?",
     "Harvard ended it because it was believed to disadvantage low-income applicants.",
     "because it was believed to disadvantage low-income applicants"),
    # a "to" that is no purpose ("ready to work"), and a sentence without a reason: no short answer
    ("Why did Xi speak?", "China stands ready to work with Russia.", None),
    ("Why did Putin travel to Beijing?", "On Friday, Putin arrived in Beijing.", None),
])
def test_a_why_question_is_answered_by_its_reason_or_not_at_all(question, sentence, reason):
    assert asks_why(question)
    assert reason_clause(question, sentence) == reason
    assert GroundedReader.short(question, "Friday, Putin arrived in Beijing", sentence) == (reason or "")
