"""Every minute and second the course states comes from one place and adds up.

fwdlib/course/timetable.py holds the reading minutes, the exercise minutes and the lab sessions;
each lesson's compute time is measured when `make outputs` stores it. The lesson headers, the
exercise headings, the README's course map and the guide's sessions are written from them; these
tests fail when any of them was edited by hand, when a plan leaves under 10 minutes of slack, or
when it teaches a lesson before the one it builds on.
"""
import re
import sys
from pathlib import Path

import nbformat

from fwdlib.course import timetable
from fwdlib.course.timetable import Session, Slot, exercises, lesson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import store_outputs  # noqa: E402


def test_every_session_keeps_its_slack_and_the_lessons_order():
    assert timetable.problems() == []


def test_the_session_check_sees_a_full_session_and_a_lesson_before_its_prerequisite():
    full = Session("full", before=(lesson("00"), lesson("01"), lesson("02"), lesson("03"), lesson("04")),
                   slots=(lesson("05"), lesson("06"), Slot("discussion", 15)), after=())
    assert any("slack" in p for p in timetable.problems((full,)))
    early = Session("early", before=(), slots=(lesson("00"), lesson("01"), lesson("02"), lesson("04")), after=())
    assert any("lesson 04 comes before lesson 03" in p for p in timetable.problems((early,)))
    exercise_first = Session("x", before=(), slots=(lesson("00"), exercises("1.1"), lesson("01")), after=())
    assert any("exercise 1.1 comes before its lesson" in p for p in timetable.problems((exercise_first,)))


def test_the_timetable_names_every_lesson_and_every_exercise_heading():
    assert sorted(timetable.LESSON_MINUTES) == sorted(p.name[:2] for p in store_outputs.LESSONS)
    headings = {}
    for path in store_outputs.SOLUTIONS:
        headings.update(re.findall(r"### Exercise (\d+\.\d+) · .*?\*\(about (\d+) minutes\)\*", path.read_text()))
    assert {k: int(v) for k, v in headings.items()} == timetable.EXERCISE_MINUTES


def test_every_stated_time_is_written_from_the_timetable_and_the_measured_compute():
    stale = store_outputs.stamp_all(write=False)
    assert not stale, f"edited by hand or not regenerated: {[str(p.relative_to(ROOT)) for p in stale]}: run `make outputs`"


def test_each_lesson_header_states_its_own_stored_compute_time():
    readme = (ROOT / "README.md").read_text()
    for path in store_outputs.LESSONS:
        meta = nbformat.read(path, as_version=4).metadata["fwdlib"]
        seconds = max(5, 5 * round(meta["compute_s"] / 5))
        assert abs(seconds - meta["compute_s"]) <= 2.5 or seconds == 5
        assert f"Compute: about {seconds:.0f} s in quick mode on {meta['cpus']} CPU cores" in path.read_text()
        row = next(line for line in readme.splitlines() if line.startswith(f"| {path.name[:2]} | ["))
        assert f"| {seconds:.0f} s |" in row


def test_the_readme_counts_the_exercises():
    assert f"{len(timetable.EXERCISE_MINUTES)} exercises, hints in two levels" in (ROOT / "README.md").read_text()
