import pytest
from hypothesis import given, strategies as st
import torch

from fwdlib import commandline, session


def test_quick_mode_reads_the_environment(monkeypatch):
    for value in ("1", "true", "Yes", "y", "on"):
        monkeypatch.setenv("FWDLIB_QUICK", value)
        assert session.quick_mode()
    for value in ("0", "false", "no", "n", "off", ""):
        monkeypatch.setenv("FWDLIB_QUICK", value)
        assert not session.quick_mode()
    monkeypatch.setenv("FWDLIB_QUICK", "2")          # neither: refused, never read as full mode
    with pytest.raises(ValueError, match="FWDLIB_QUICK='2' is not understood"):
        session.quick_mode()


def test_pick_device_refuses_a_missing_mps(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="this machine has no Apple GPU"):
        session.pick_device("mps")


def test_pick_device_prefers_request_and_refuses_missing_cuda(monkeypatch):
    assert session.pick_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="this machine has no CUDA"):
        session.pick_device("cuda")


def test_colab_cpu_hint(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert session.pick_device().type in ("cpu", "mps")
    assert "Change runtime type" in capsys.readouterr().out


def test_seed_all_repeats():
    session.seed_all(3)
    a = torch.rand(3)
    session.seed_all(3)
    assert torch.equal(a, torch.rand(3))


def test_settings_read_as_one_line():
    assert commandline.format_settings({"lr": 0.00059123, "hidden": [1000, 1000], "schedule": "greedy"}) == \
        "lr=0.0005912, hidden=[1000, 1000], schedule=greedy"


def test_the_notebooks_quick_mode_switch_decides_unless_set_from_outside(monkeypatch):
    monkeypatch.setattr(session, "QUICK_FROM_OUTSIDE", None)
    monkeypatch.setenv("FWDLIB_QUICK", "1")
    assert session.use_quick_mode(False) is False and session.quick_mode() is False   # flipped and rerun: it takes
    assert session.use_quick_mode(True) is True
    monkeypatch.setattr(session, "QUICK_FROM_OUTSIDE", "0")                       # e.g. make gpu-check's full mode
    monkeypatch.setenv("FWDLIB_QUICK", "0")
    assert session.use_quick_mode(True) is False


# Every spelling of a storage a user may type (issue 40): the password must never reach a message.
SPELLINGS = [
    "postgresql+psycopg://u:{raw}@db.example:5432/lab",          # unencoded: may hold @ / : %
    "postgresql://u:{quoted}@db.example/lab",
    "u:{raw}@db.example:5432/lab",                                # no scheme
    "host=db.example password={bare} dbname=lab",                 # libpq's keyword form
    "host=db.example password='{bare}' dbname=lab",
    "postgresql://db.example/lab?sslmode=require&password={quoted}",
]


@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="'\"\\\\"),
               min_size=6, max_size=24).map(lambda s: "Zq9" + s),
       st.sampled_from(SPELLINGS))
def test_no_spelling_of_a_storage_shows_its_password(password, spelling):
    from urllib.parse import quote

    from fwdlib.commandline import hide_secrets, redact
    bare = password.replace("&", "").replace(" ", "")
    url = spelling.format(raw=password.replace(" ", ""), quoted=quote(password, safe=""), bare=bare)
    secret = bare if "{bare}" in spelling else password.replace(" ", "")
    message = hide_secrets(f"bench: cannot open the storage {url!r} (OperationalError: connection refused)", url)
    assert secret not in message and secret not in redact(url), (url, message)
    assert "db.example" in message                         # the host stays: the user must see where it failed
