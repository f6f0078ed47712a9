"""The `cronflow top` application: the screens (views/top_screens.py) over one Reader
(views/reading.py), the confirmation every action asks for, and the help.

Textual is imported only here and in the screens, and only by `cronflow top`.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from cronflow.views import actions
from cronflow.views.reading import Reader

HELP = """\
cronflow top: the jobs of {path}

  jobs      enter  a job's runs      r  run it now        d  run it and the jobs after it
            p      pause / resume    g  dependency graph  a  assets
            /      filter by name    escape  clear the filter
  runs      enter  the run's output  x  run it again
  output    e      stdout / stderr   (follows a run while it runs)
  anywhere  escape back   ?  this help   q  quit

Actions ask first, then run the cronflow command you would type (shown in the question's
answer), so they take the same locks and are recorded as that command records them.
{read_only}"""


class TopApp(App[None]):
    """The dashboard of one jobs file."""

    TITLE = "cronflow top"
    CSS = """
    #summary { height: auto; padding: 0 1; }
    #filter { display: none; }
    #filter.shown { display: block; }
    DataTable { height: 1fr; }
    #title { padding: 0 1; text-style: bold; }
    Confirm > Vertical, Help > Vertical {
        width: 84; height: auto; border: thick $accent; background: $surface; padding: 1 2;
    }
    Confirm, Help { align: center middle; }
    """
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self, reader: Reader, command: list[str], jobs_file: Path, read_only: bool = False
    ) -> None:
        super().__init__()
        self.reader = reader
        self.command = command  # how to run this very cronflow (cli/options.own_command)
        self.jobs_file = jobs_file
        self.read_only = read_only
        self.said: list[str] = []  # what the actions answered, newest last

    def on_mount(self) -> None:
        from cronflow.views.top_screens import JobsScreen

        self.sub_title = str(self.jobs_file)
        self.push_screen(JobsScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, Help):
            self.push_screen(Help(self._help_text()))

    def _help_text(self) -> str:
        read_only = "Started with --read-only: the actions are off.\n" if self.read_only else ""
        return HELP.format(path=self.jobs_file, read_only=read_only)

    def ask(self, action: actions.Action) -> None:
        """Ask to confirm the action; carry it out (in a thread) if confirmed."""
        if self.read_only:
            self.tell("read-only (cronflow top --read-only): no action")
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.tell(f"running: cronflow {' '.join(action.arguments)}")
                self.run_worker(lambda: self._carry_out(action), thread=True, group="actions")

        self.push_screen(Confirm(action.question), answered)

    def _carry_out(self, action: actions.Action) -> None:
        said = actions.carry_out(self.command, action, self.jobs_file)
        self.call_from_thread(self.tell, f"cronflow {action.arguments[0]}: {said}")

    def tell(self, text: str) -> None:
        self.said.append(text)
        self.notify(text, timeout=6)


class Confirm(ModalScreen[bool]):
    """A yes/no question: y or enter says yes, n or escape no."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.question, id="question")
            yield Label("y: yes   n: no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Help(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.text, id="help")

    def action_close(self) -> None:
        self.dismiss(None)
