"""What validating a jobs file asked of this machine, so that a validation can be reused.

Validating is a function of the file's text, who asks, and the answers of a few questions
about the host: does this shell exist, does that account, is this a directory. Each such
question is a function marked `@host_question`. While `recording()` is active, every
answer is kept (and each question asked once: 20,000 jobs with one shell ask once); a
cached validation holds them, and stays true while `still_true` finds every answer
unchanged (see act/configuration.py).

Arguments and answers must be hashable and comparable values (strings, paths, numbers,
tuples, findings), never objects of the model.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

Answers = dict[tuple[str, tuple[Any, ...]], Any]  # (question, arguments) -> answer

P = ParamSpec("P")
R = TypeVar("R")

_QUESTIONS: dict[str, Callable[..., Any]] = {}
_recorded: ContextVar[Answers | None] = ContextVar("host_answers", default=None)


def host_question(function: Callable[P, R]) -> Callable[P, R]:
    """Mark a function that asks the host something validation depends on."""
    name = f"{function.__module__}.{function.__qualname__}"
    _QUESTIONS[name] = function

    @functools.wraps(function)
    def asked(*args: P.args, **kwargs: P.kwargs) -> R:
        answers = _recorded.get()
        if answers is None or kwargs:
            return function(*args, **kwargs)
        key = (name, tuple(args))
        if key not in answers:
            answers[key] = function(*args, **kwargs)
        answer: R = answers[key]
        return answer

    return asked


@contextmanager
def recording() -> Iterator[Answers]:
    """Keep every answer given within the block (in the dict yielded)."""
    answers: Answers = {}
    token = _recorded.set(answers)
    try:
        yield answers
    finally:
        _recorded.reset(token)


def still_true(answers: Answers) -> bool:
    """Whether the host gives every recorded answer again (an unknown question: no)."""
    for (name, args), answer in answers.items():
        question = _QUESTIONS.get(name)
        if question is None:
            return False
        try:
            if question(*args) != answer:
                return False
        except Exception:  # noqa: BLE001 - a question that now fails is a changed answer
            return False
    return True
