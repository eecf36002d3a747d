"""What a command reads and prints: names given as a list, settings on one line, and every message
with a database's password hidden (argparse's own errors too)."""
from __future__ import annotations

import argparse
import re
import sys
from urllib.parse import quote, unquote


class BadValue(ValueError):
    """A value the library cannot use, named by its parameter ("seeds must be ..."); a command names
    it by its flag ("--seeds must be ..."), so one check speaks to a notebook and to a shell alike."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name} {message}")
        self.name, self.message = name, message

    def as_flag(self) -> str:
        return f"--{self.name.replace('_', '-')} {self.message}"


def said_by_command(err: BaseException) -> str:
    """An error as a command prints it: a BadValue by its flag, anything else as it is."""
    return err.as_flag() if isinstance(err, BadValue) else str(err)


def as_tuple(value) -> tuple[str, ...] | None:
    """A comma-separated string or a sequence as a tuple of names (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def format_settings(values: dict) -> str:
    """lr=0.0005912, hidden=[1000, 1000]: hyperparameters in one readable line."""
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


# Every spelling of a database's password a message may carry, whether or not the URL parses:
# user:PASSWORD@ after a scheme (up to the token's last @: a password may hold an unencoded @ or /),
# the same without a scheme (user:PASSWORD@host), password-like query parameters (?password=...) and
# libpq's keyword form (host=... password=... dbname=..., the value bare or quoted).
URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)(?P<secret>\S+)(?=@[^\s@]*(?:\s|$))",
                          re.IGNORECASE)
BARE_PASSWORD = re.compile(r"(?P<head>(?<![\w/:@.+%*-])[\w.+-]+:)(?!//)(?P<secret>\S+)(?=@[\w.-]+(?::\d+)?(?:/[^\s@]*)?(?=[\s'\")]|$))")
QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:password|passwd|pwd|pass|sslpassword|secret|token)=)(?P<secret>[^&\s'\"]+)",
                          re.IGNORECASE)
KEYWORD_SECRET = re.compile(r"(?P<head>(?<![\w?&;])(?:password|passwd|pwd|sslpassword)\s*=\s*)"
                            r"(?P<secret>'(?:[^'\\]|\\.)*'|[^\s'\"&]+)", re.IGNORECASE)
SECRET_PATTERNS = (URL_PASSWORD, BARE_PASSWORD, QUERY_SECRET, KEYWORD_SECRET)


def redact_text(text: str) -> str:
    """`text` with every database password in it, in any of the spellings above, as ***."""
    text = str(text)
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(r"\g<head>***", text)
    return text


SECRET_KEYS = ("password", "passwd", "pwd", "pass", "sslpassword", "secret", "token")


def _secrets(url: str) -> list[str]:
    """The password and every secret query parameter of a database URL, in every spelling it may
    take in a message: as written (found by pattern, so an unparsable URL keeps none), decoded,
    and encoded with upper- or lower-case hex."""
    from sqlalchemy.engine import make_url
    found = [m["secret"] for pattern in SECRET_PATTERNS for m in pattern.finditer(url)]
    found += [f[1:-1] for f in found if len(f) > 1 and f[0] == f[-1] == "'"]          # a quoted keyword value
    try:
        parsed = make_url(url)
    except Exception:            # not a URL SQLAlchemy reads: the pattern found what there is
        parsed = None
    if parsed is not None:
        found += [parsed.password] if parsed.password else []
        for key, value in parsed.query.items():
            if key.lower() in SECRET_KEYS:
                found += [value] if isinstance(value, str) else list(value)
    spellings = set()
    for secret in (str(v) for v in found if v):
        plain = unquote(secret)
        spellings |= {secret, plain, quote(plain, safe=""), re.sub(r"%[0-9A-F]{2}", lambda m: m[0].lower(),
                                                                    quote(plain, safe=""))}
    return sorted(spellings, key=len, reverse=True)      # longest first: no secret is left half-hidden


def one_line(text: str) -> str:
    """`text` with every character that is not printable shown escaped (a newline as \\n): a value
    read from a shared database cannot print lines of its own."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def redact(url: str) -> str:
    """The URL without its password (user:PASSWORD@ or ?password=...), for files and logs."""
    return hide_secrets(url, url)


def hide_secrets(text: str, url: str) -> str:
    """`text` (an error message, a status line) with every secret of `url` replaced by ***, and
    the password of any other URL in it too."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return redact_text(text)


class Parser(argparse.ArgumentParser):
    """argparse, whose own errors (a mistyped flag next to a database URL) never echo a password
    (each argument is read as a URL, so that a password no pattern finds, one with a space, is
    hidden too) and are one line. `actions` ({"status": "--status", ...}): words that stand for a
    flag, wherever they stand among the arguments (`fwdlib bench --study s status`)."""

    def __init__(self, *args, actions: dict | None = None, **kwargs):
        # no abbreviations: `--stud x` read as --study would hide a word that is an option's value
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self.actions = actions or {}

    def parse_args(self, args=None, namespace=None):
        self.arguments = list(sys.argv[1:] if args is None else args)
        return super().parse_args(self._actions_as_flags(self.arguments), namespace)

    def _values_after(self, args: list[str], i: int) -> int:
        """How many of the arguments after args[i] (an option, or an action word) are its values."""
        word = self.actions.get(args[i], args[i])
        option = self._option_string_actions.get(word.split("=")[0])
        if option is None or option.nargs == 0 or "=" in word:
            return 0
        rest = args[i + 1:]
        if option.nargs is None or isinstance(option.nargs, int):
            return min(option.nargs or 1, len(rest))
        values = next((k for k, a in enumerate(rest) if a.startswith("-")), len(rest))     # ?, * or +
        return min(values, 1) if option.nargs == "?" else values

    def _actions_as_flags(self, args: list[str]) -> list[str]:
        """The action word as its flag: a bare word that is not the value of an option or action
        before it (and none after `--`)."""
        found, i = [], 0
        while i < len(args) and args[i] != "--":
            if args[i] in self.actions and not args[i].startswith("-"):
                found.append(i)
            elif not args[i].startswith("-"):
                i += 1
                continue
            i += 1 + self._values_after(args, i)
        if len(found) > 1:
            self.error(f"one action at a time, not {' and '.join(args[j] for j in found)}")
        return [self.actions.get(a, a) if i in found else a for i, a in enumerate(args)]

    def error(self, message: str):
        for argument in map(str, getattr(self, "arguments", ())):
            if "@" in argument or "=" in argument:        # what could carry a password
                for part in {argument, argument.partition("=")[2]} - {""}:
                    message = hide_secrets(message, part)
            if "@" in argument and argument in message:    # a password no reading finds (a space in it)
                message = message.replace(argument, "***@" + argument.rpartition("@")[2])
        self.exit(2, f"{self.prog}: error: {redact_text(message)} (see {self.prog} --help)\n")
