"""The course's clock: every minute a lesson, an exercise or a lab session states has its home here.

Reading minutes are the authors' estimates for a first-time student (time a teaching assistant's
first run before the term and adjust them here); compute seconds are measured, not typed: `make
outputs` runs each lesson in quick mode, stores the time in the notebook's metadata and writes
every header, the README's course map and the instructor guide's sessions from this module
(scripts/store_outputs.py). tests/test_timetable.py checks that every session keeps its slack and
teaches no lesson before the one it builds on.
"""
from __future__ import annotations

from dataclasses import dataclass

SESSION_MINUTES = 90
SLACK_MINUTES = 10          # a session that fills the session exactly has no room for a question

LESSON_MINUTES = {"00": 20, "01": 20, "02": 25, "03": 30, "04": 25, "05": 30, "06": 45, "07": 20, "08": 20}
# what each lesson builds on (the instructor guide's "needs" column)
PREREQUISITES = {"00": (), "01": ("00",), "02": ("01",), "03": ("02",), "04": ("03",),
                 "05": ("04",), "06": ("05",), "07": ("06",),
                 "08": ("06",)}
EXERCISE_MINUTES = {
    "0.1": 10, "0.2": 10,
    "1.1": 5, "1.2": 5, "1.3": 10, "1.4": 5, "1.5": 15,
    "2.1": 5, "2.2": 5, "2.3": 10, "2.4": 5, "2.5": 15,
    "3.1": 10, "3.2": 15, "3.3": 5, "3.4": 5, "3.5": 15, "3.6": 15,
    "4.1": 5, "4.2": 15, "4.3": 10, "4.4": 5, "4.5": 15,
    "5.1": 10, "5.2": 5, "5.3": 10, "5.4": 5, "5.5": 10,
    "6.1": 10, "6.2": 5, "6.3": 10, "6.4": 5, "6.5": 10, "6.6": 10, "6.7": 5,
    "7.1": 10, "7.2": 10, "7.3": 5, "7.4": 10,
    "8.1": 10, "8.2": 10, "8.3": 10, "8.4": 5,
}


@dataclass(frozen=True)
class Slot:
    """One block of a session: a lesson ("lesson 02"), exercises ("exercises 2.2, 2.5") or a
    discussion with its own minutes."""
    what: str
    discussion_minutes: int = 0

    def lessons(self) -> tuple[str, ...]:
        return (self.what.split()[1],) if self.what.startswith("lesson ") else ()

    def exercises(self) -> tuple[str, ...]:
        return tuple(self.what.split(" ", 1)[1].split(", ")) if self.what.startswith("exercises ") else ()

    def minutes(self) -> int:
        return (sum(LESSON_MINUTES[n] for n in self.lessons())
                + sum(EXERCISE_MINUTES[n] for n in self.exercises()) + self.discussion_minutes)


@dataclass(frozen=True)
class Session:
    title: str
    before: tuple[Slot, ...]       # homework due before the session
    slots: tuple[Slot, ...]
    after: tuple[Slot, ...]        # homework after it


def lesson(number: str) -> Slot:
    return Slot(f"lesson {number}")


def exercises(*numbers: str) -> Slot:
    return Slot("exercises " + ", ".join(numbers))


SESSIONS = (
    Session("A 90-minute lab: Forward-Forward in one session",
            before=(lesson("00"),),
            slots=(lesson("01"), exercises("1.1", "1.2", "1.3"), lesson("02"), exercises("2.2"),
                   Slot("discussion: why FF needs many epochs (the study's counts are printed in 02)", 5)),
            after=(exercises("1.4", "1.5", "2.1", "2.3", "2.4", "2.5"),)),
    Session("A second session: from the cost of a step to the head-to-head",
            before=(lesson("03"), exercises("3.1", "3.3"), lesson("04"), exercises("4.2")),
            slots=(lesson("05"), lesson("06"), exercises("6.7")),
            after=(exercises("4.4", "5.3", "5.5", "6.3", "6.6"),)),
)


def problems(sessions: tuple[Session, ...] = SESSIONS) -> list[str]:
    """Why a session would not work in a room: too little slack, or a lesson before what it needs."""
    found, taught = [], set()
    for session in sessions:
        used = sum(slot.minutes() for slot in session.slots)
        if used > SESSION_MINUTES - SLACK_MINUTES:
            found.append(f"{session.title}: {used} minutes leave {SESSION_MINUTES - used} of slack "
                         f"(keep at least {SLACK_MINUTES})")
        for slot in session.before + session.slots + session.after:
            for number in slot.lessons():
                missing = [p for p in PREREQUISITES[number] if p not in taught]
                if missing:
                    found.append(f"{session.title}: lesson {number} comes before lesson "
                                 f"{', '.join(missing)}, which it builds on")
                taught.add(number)
            for number in slot.exercises():
                if number.split(".")[0].zfill(2) not in taught:
                    found.append(f"{session.title}: exercise {number} comes before its lesson")
    return found


def session_table(session: Session) -> str:
    """The session as a Markdown table of contiguous slots, the slack last."""
    rows, start = ["| minutes | what | estimate |", "|---|---|---|"], 0
    for slot in session.slots:
        rows.append(f"| {start}-{start + slot.minutes()} | {slot.what} | {slot.minutes()} |")
        start += slot.minutes()
    rows.append(f"| {start}-{SESSION_MINUTES} | slack: questions, a slow start, a cell run twice | "
                f"{SESSION_MINUTES - start} |")
    return "\n".join(rows)


def homework(slots: tuple[Slot, ...]) -> str:
    return "; ".join(f"{slot.what} ({slot.minutes()} minutes)" for slot in slots)


def exercise_minutes_of(lesson_number: str) -> int:
    """The minutes of one exercise notebook: the sum of its exercises'."""
    prefix = f"{int(lesson_number)}."
    return sum(m for n, m in EXERCISE_MINUTES.items() if n.startswith(prefix))
