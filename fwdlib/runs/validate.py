"""A benchmark record, checked field by field before anything computes with it.

Records arrive from three places the kit does not control: a results.jsonl (edited by hand, written
by an older version, appended by another program), a study's database (filled by every machine of a
class) and `--import` (any folder). The report takes medians of their numbers and draws their
histories, so one bad value would crash it for everyone: `record_problem` names the first wrong
field (type or range), and a record with one is skipped with a line naming where it was.

Every number anywhere in a record must be finite and of a size a measurement can have (JSON allows
NaN, Infinity and 10**400), except in the history, where a diverged run's loss is honestly NaN or infinite; the
fields the report reads must have their type.
"""
from __future__ import annotations

import math
import numbers

from .. import algorithms as registry
from ..algorithms.base import KERNELS
from .entry import Entry
from .spec import RunSpec

MAX_MAGNITUDE = 1e18         # bytes, joules, seconds: larger is no measurement (and 10**400 breaks floats)
MAX_TEXT = 100_000           # characters of one string (a traceback is a few thousand)
MAX_ITEMS = 100_000          # elements of one list (a history has one per epoch and stage)
MAX_DEPTH = 32               # nesting (the kit writes at most 4 levels)
MAX_LINE_BYTES = 16 * 2**20  # one record as a JSON line
# The costs a rival and its twin are compared by as log-ratios: a run takes time, and a cost below a
# nanosecond, nanojoule or byte is a float's rounding, whose logarithm would blow up an interval.
RATIOED = ("train_time_s", "energy_measured_j", "energy_gpu_j", "energy_estimated_j", "train_memory_bytes")
MIN_MEASURED = 1e-9

REQUIRED = ("key", "spec", "entries", "status")
REQUIRED_OK = ("test_acc", "epochs", "train_time_s", "energy_measured_j", "energy_estimated_j", "history")
NOT_NULL = ("test_acc", "epochs", "train_time_s", "history")     # the energies are null where unmeasured
# The fields the report and the paired analysis read, by kind; each may be absent (an older record).
# Numbers and mappings may be null (not measured), texts and lists of texts may not.
NUMBERS = ("test_acc", "best_val_acc", "epochs", "train_time_s", "prep_time_s", "epoch_time_s", "wall_s", "gpu_time_s",
           "energy_measured_j", "energy_gpu_j", "energy_idle_subtracted_j", "energy_estimated_j", "co2_kg",
           "train_memory_bytes", "gpu_peak_allocated_bytes", "gpu_peak_reserved_bytes", "nvml_used_bytes",
           "cpu_peak_rss_bytes", "process_cpu_s", "foreign_cpu_s", "foreign_load", "cpus", "parameters")
SIGNED = ("cpu_rss_growth_bytes",)     # a difference of two readings
TEXTS = ("key", "started", "finished", "augmentation", "co2_method", "cpu_rss_method", "execution_mode",
         "data_source", "reason", "traceback")
TEXT_LISTS = ("entries", "notes", "energy_sources", "device_names")
POOL_TEXT = 300             # the study's worker column
MAPPINGS = {"machine": str, "versions": str, "pool": str, "train_memory_parts": numbers.Real,
            "stopped_early": bool}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _wild(value, path: str = "", finite: bool = True, depth: int = 0) -> str | None:
    """The path of the first value anywhere in `value` that no record holds: a number that is not
    finite (where `finite`) or too large, a string too long or that no database stores (a NUL, a
    lone surrogate), a list too long or nested too deep."""
    if isinstance(value, bool) or value is None:
        return None
    if depth > MAX_DEPTH:
        return f"{path.split('.', 1)[0]} is nested deeper than {MAX_DEPTH} levels"
    if isinstance(value, numbers.Real):
        ok = (math.isfinite(value) and abs(value) <= MAX_MAGNITUDE) or (not finite and not math.isfinite(value)) \
            if isinstance(value, float) else abs(value) <= MAX_MAGNITUDE
        return None if ok else f"{path or 'the record'} is {'not finite' if isinstance(value, float) else 'too large'}"
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"{path} is longer than {MAX_TEXT} characters"
        if "\x00" in value or not value.isprintable() and not _encodable(value):
            return f"{path} holds a NUL or a lone surrogate, which no database stores"
        return None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else None
    if items is None:
        return f"{path} is a {type(value).__name__}"
    if len(value) > MAX_ITEMS:
        return f"{path} has more than {MAX_ITEMS} elements"
    bad_key = next((k for k in value if isinstance(value, dict) and not (isinstance(k, str) and "\x00" not in k
                                                                        and _encodable(k))), None)
    if bad_key is not None:
        return (f"{path or 'the record'} has a key {bad_key!r} that is not text, or holds a NUL or a lone surrogate, "
                "which no database stores")
    return next((why for key, item in items
                 if (why := _wild(item, f"{path}.{key}" if path else str(key), finite and key != "history",
                                  depth + 1))), None)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


# The spec as RunSpec.record() writes it: each field's kind (None: may be null).
SPEC_FIELDS = {"dataset": str, "algorithm": str, "device": str, "protocol": str, "monitor": str, "config": dict,
               "seed": int, "batch_size": int, "epochs": int, "patience": (int, None), "min_delta": (float, int),
               "augment": (str, None), "cuda_graphs": bool, "kernels": (str, None)}
OPTIONAL_SPEC = ("augment", "kernels")          # absent in records written before them


def _kind_problem(name: str, value, kind) -> str | None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if value is None and None in kinds:
        return None
    if value is None or isinstance(value, bool) != (bool in kinds) or not isinstance(value, tuple(k for k in kinds if k)):
        return f"{name} is not {' or '.join('null' if k is None else k.__name__ for k in kinds)}"
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return f"{name} is negative"
    return None


def _spec_problem(record: dict) -> str | None:
    spec = record["spec"]
    if not isinstance(spec, dict):
        return "spec is not a mapping"
    for name, kind in SPEC_FIELDS.items():
        if name not in spec and name not in OPTIONAL_SPEC:
            return f"spec.{name} is missing"
        if problem := _kind_problem(f"spec.{name}", spec.get(name), kind):
            return problem
    if spec.get("kernels", "fused") not in KERNELS:
        return f"spec.kernels {spec['kernels']!r} is not one of {', '.join(KERNELS)}"
    if spec["algorithm"] not in registry.NAMES:
        return f"spec.algorithm {spec['algorithm']!r} is not one of {', '.join(registry.NAMES)}"
    try:
        parsed = [Entry.parse(e) for e in record["entries"]]
        RunSpec.from_record(spec, parsed[0])
    except (KeyError, TypeError, ValueError) as err:
        return f"spec cannot be read ({type(err).__name__}: {err})"
    if any(e.algorithm != spec["algorithm"] for e in parsed):
        return f"entries {record['entries']} are not all of spec.algorithm {spec['algorithm']!r}"
    return None


def _history_problem(history) -> str | None:
    """An epoch's row maps names to numbers (a missing metric is drawn as a gap), its stage to text."""
    if not isinstance(history, list):
        return "history is not a list"
    for i, row in enumerate(history):
        if not isinstance(row, dict):
            return f"history[{i}] is not an epoch's row (a mapping)"
        if not isinstance(row.get("stage", ""), str):
            return f"history[{i}].stage is not text"
        wrong = next((k for k, v in row.items() if k != "stage" and v is not None and not _is_number(v)), None)
        if wrong:
            return f"history[{i}].{wrong} is not a number"
    return None


def _field_problem(record: dict) -> str | None:
    if not isinstance(record["key"], str) or not record["key"]:
        return "key is not a run's key (text)"
    for name in TEXTS:
        if name in record and not isinstance(record[name], str):
            return f"{name} is not text"
    for name in TEXT_LISTS:
        value = record.get(name, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"{name} is not a list of texts"
    if not record["entries"]:
        return "entries is empty"
    for name, kind in MAPPINGS.items():
        value = record.get(name)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"{name} is not a mapping"
        wrong = next((k for k, v in value.items() if v is not None and not (isinstance(v, kind) and (
            kind is bool or not isinstance(v, bool)))), None)
        if wrong is not None:
            return f"{name}.{wrong} is not {'text' if kind is str else 'true or false' if kind is bool else 'a number'}"
    if not isinstance(record.get("schema", 1), int) or isinstance(record.get("schema"), bool) or record.get("schema", 1) < 1:
        return "schema is not a version number (1, 2, ...)"
    configuration = record.get("configuration")
    if configuration is not None and not (isinstance(configuration, dict) and set(configuration) == {"study", "revision"}
                                          and all(v is None or isinstance(v, str) for v in configuration.values())):
        return "configuration is not {study: text or null, revision: text or null}"
    parts = record.get("train_memory_parts")
    if parts is not None and not _is_number(parts.get("saved_for_backward")):
        return "train_memory_parts.saved_for_backward is not a number"      # the memory table reads it
    for name in NUMBERS + SIGNED:
        value = record.get(name)
        if value is not None and not _is_number(value):
            return f"{name} is not a number"
        if value is not None and name in NUMBERS and value < 0:
            return f"{name} is negative"
        if name in RATIOED and value is not None and (value or name == "train_time_s") and value < MIN_MEASURED:
            return f"{name} {value:g} is below {MIN_MEASURED:g}: no measurement"
    pool = record.get("pool") or {}
    wrong = next((k for k, v in pool.items() if v is not None and (len(v) > POOL_TEXT or not v.isprintable())), None)
    if wrong:      # the study stores them in columns, and --status prints them one per line
        return f"pool.{wrong} is not one printable line of at most {POOL_TEXT} characters"
    return None


def record_problem(record) -> str | None:
    """Why `record` cannot be used, naming the field, or None if it can."""
    if not isinstance(record, dict):
        return "not a benchmark record (not a mapping)"
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        return f"not a benchmark record of this version (no {', '.join(missing)})"
    if record["status"] not in ("ok", "failed"):
        return f"status {record['status']!r} is not ok or failed"
    if record["status"] == "ok":
        missing = [k for k in REQUIRED_OK if k not in record or (record[k] is None and k in NOT_NULL)]
        if missing:
            return f"a finished run without {', '.join(missing)}"
    problem = _wild(record) or _field_problem(record) or _spec_problem(record)
    if problem is None and record["status"] == "ok":
        if not 0 <= record["test_acc"] <= 1:
            return f"test_acc {record['test_acc']} is not between 0 and 1"
        problem = _history_problem(record["history"])
    return problem
