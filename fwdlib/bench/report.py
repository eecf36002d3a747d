"""The benchmark's report: medians with intervals of stated confidence, paired verdicts, the study beside.

One entry's values over seeds are summarised by their median and a distribution-free
order-statistic interval whose achieved confidence is printed (the range of 3 seeds is a 75%
interval for the median; 95% is reached from 6 seeds on): `stats.median_interval`. A forward-only
algorithm's ratio to its BP twin is median(rival) / median(twin) of the same dataset, protocol
and device; the verdicts compare them seed by seed (`verdicts`). Energy is the hardware-measured
total where there is one; otherwise the report says "not measured" and shows CodeCarbon's
estimate, labelled as such.
"""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from pathlib import Path


from .. import algorithms as registry
from . import claims, figures, stats, summary, verdicts
from .stats import Summary, summarise
from ..meters.process import FOREIGN_CPU_FLOOR_S, FOREIGN_LOAD_LIMIT, contamination
from ..runs.spec import RunSpec, thaw
from ..typed import ReadsAsMapping
from .plan import configuration
from .study import Published, differences, study_row
from ..commandline import format_settings
from ..files import atomic_write


@dataclass(frozen=True)
class Metric:
    """One measured quantity: its name in results and CSV, how to read it from a record, the
    report table's column header, and the study's figure to show beside it (if the study has one)."""
    name: str
    read: Callable[[dict], float | None]
    header: str
    digits: int = 2
    study: tuple[str, Callable[[Published], float]] | None = None
    # An absolute cost of the run's window (time, energy, CO2): pooled runs are summarised per
    # machine kind, and a run whose CPUs other work used (`meters.process.contamination`) is left out.
    per_machine: bool = False


# Add a metric here once: results, report.csv and report.md all follow this list.
METRICS = (
    Metric("test_acc", lambda r: r["test_acc"] * 100, "test acc %", study=("study acc %", lambda s: s.acc)),
    Metric("epochs", lambda r: r["epochs"], "epochs", 1),
    Metric("train_time_s", lambda r: r["train_time_s"], "train time s", study=("study time s", lambda s: s.time_s), per_machine=True),
    Metric("energy_gpu_wh", lambda r: r["energy_gpu_j"] / 3600 if r.get("energy_gpu_j") else None,
           "GPU energy Wh (measured)", 4, study=("study GPU energy Wh", lambda s: s.energy_wh), per_machine=True),
    Metric("energy_wh", lambda r: r["energy_measured_j"] / 3600 if r["energy_measured_j"] else None,
           "all energy Wh (GPU + CPU packages)", 4, per_machine=True),
    Metric("energy_above_idle_wh", lambda r: r["energy_idle_subtracted_j"] / 3600
           if r.get("energy_idle_subtracted_j") is not None else None, "energy above idle Wh", 4, per_machine=True),
    Metric("energy_estimated_wh", lambda r: r["energy_estimated_j"] / 3600 if r["energy_estimated_j"] else None,
           "ESTIMATED energy Wh (CodeCarbon CPU+RAM model)", 4, per_machine=True),
    Metric("train_memory_mib", lambda r: r["train_memory_bytes"] / 2**20 if r.get("train_memory_bytes") else None,
           "training memory MiB", 1),
    Metric("gpu_allocator_peak_mib", lambda r: r["gpu_peak_allocated_bytes"] / 2**20
           if r.get("gpu_peak_allocated_bytes") else None, "GPU allocator peak MiB", 0),
    Metric("co2_g", lambda r: r["co2_kg"] * 1000 if r.get("co2_kg") is not None else None, "CO2 g", 4, per_machine=True),
)


MEMORY_METHOD = ("training memory on any device (fwdlib.memory): the peak of tensors saved for backward "
                 "in a training step, plus parameters, gradients, optimizer state and a stage's cached "
                 "features, the largest over the stages")


def machine_kind(record: dict) -> str:
    """The kind of machine a run ran on: its CPU and the GPU it used (runs from before records
    named their machine: the CPU the meter named)."""
    found = record.get("machine") or {}
    kind = found.get("cpu") or (record.get("device_names") or ["an unnamed machine"])[-1]
    return kind + (f", {found['gpu']}" if found.get("gpu") else "")


def title_of(records: list[dict]) -> str:
    """The report's title from its records alone, so that a study's report is the same whether
    it is read from the database or from an --export of it."""
    studies = {(r.get("pool") or {}).get("study") for r in records}
    return f"study {studies.pop()}, pooled" if len(studies) == 1 and None not in studies else "from results.jsonl"


@dataclass(frozen=True, eq=False)
class Row(ReadsAsMapping):
    """One line of the report: an entry (a rival, or a rival's twin) on one dataset, protocol and
    device, over its seeds. `metrics` holds each METRICS summary, read by name too
    (`row["test_acc"]`); a rival's row names its twin and holds its paired verdicts, and `also` the
    same rival against its other twins (a checkpointed twin: `comparisons`). A twin variant's row
    names its plain twin, to which its ratios are (what the variant costs or saves)."""
    dataset: str
    protocol: str
    device: str
    entry: str
    spec: RunSpec
    algorithm: str
    config: Mapping
    seeds_ok: int
    failed: tuple[str, ...]
    mode: tuple[str, ...]
    memory_method: str
    energy_sources: tuple[str, ...]
    augmentation: str
    study: Published | None
    configuration: Mapping                 # how the study's and the revision's presets ran it (plan.configuration)
    differences: tuple[str, ...]
    saved_mib: Summary
    machines: tuple[str, ...]
    hosts: tuple[str, ...]
    metrics: Mapping                       # METRICS name -> Summary
    by_machine: Mapping                    # machine kind -> METRICS name -> Summary (several kinds only)
    twin: str | None = None
    twin_study: Published | None = None
    paired: Mapping = field(default_factory=dict)  # PAIRED metric -> Verdict (a rival with a twin)
    also: tuple = ()                       # this row against each other twin of its rival (rows like this one)

    def __post_init__(self):
        for name in ("metrics", "paired"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "by_machine", MappingProxyType({k: MappingProxyType(dict(v))
                                                                for k, v in self.by_machine.items()}))

    def __getitem__(self, name: str):
        return self.metrics[name] if name in self.metrics else super().__getitem__(name)

    def __iter__(self):
        return iter([*self.__dataclass_fields__, *self.metrics])

    def __len__(self) -> int:
        return len(self.__dataclass_fields__) + len(self.metrics)


def _row(dataset, protocol, device, entry, runs) -> Row:
    """An entry's row from its runs (every seed)."""
    ok = [r for r in runs if r["status"] == "ok"]
    clean = [r for r in ok if not contamination(r)]
    spec = RunSpec.from_record(runs[0]["spec"], entry)
    kinds = sorted({machine_kind(r) for r in ok})
    metrics, by_machine = {}, {}
    for m in METRICS:
        usable = clean if m.per_machine else ok
        metrics[m.name] = summarise([m.read(r) for r in usable]).replace(left_out=len(ok) - len(usable))
        if m.per_machine and len(kinds) > 1:
            for kind in kinds:
                by_machine.setdefault(kind, {})[m.name] = summarise([m.read(r) for r in usable if machine_kind(r) == kind])
            metrics[m.name] = summarise([]).replace(by_machine=True)
    return Row(
        dataset, protocol, device, entry, spec, spec.algorithm, runs[0]["spec"]["config"], len(ok),
        tuple(r.get("reason", "") for r in runs if r["status"] != "ok"),
        tuple(sorted({r.get("execution_mode", "?") for r in ok})),
        MEMORY_METHOD + ("; on CUDA the allocator's peak (max_memory_allocated) beside it, and NVML's device-wide "
                         "figure in results.jsonl" if any(r.get("gpu_peak_allocated_bytes") for r in ok) else ""),
        tuple(sorted({s for r in ok for s in r.get("energy_sources", [])})),
        runs[0].get("augmentation", "not recorded"), study_row(dataset, entry), configuration(runs[0]),
        tuple(differences(spec)),
        summarise([r["train_memory_parts"]["saved_for_backward"] / 2**20 for r in ok if r.get("train_memory_parts")]),
        tuple(kinds), tuple(sorted({str((r.get("machine") or {}).get("host")) for r in ok if r.get("machine")})),
        metrics, by_machine)


def _ratios(row: Row, twin: Row) -> Row:
    """The row with each metric's ratio of medians to `twin`'s, and its name and study."""
    metrics = {}
    for name, kept in row.metrics.items():
        mine, theirs = kept.median, twin.metrics[name].median
        ratio = mine / theirs if mine is not None and theirs else None
        metrics[name] = kept.replace(ratio=ratio if ratio is not None and math.isfinite(ratio) else None)  # a twin near 0
    return row.replace(twin=twin.entry, twin_study=twin.study, metrics=metrics)


def _with_twin(row: Row, twin: Row | None, rival_runs, twin_runs, margins: dict) -> Row:
    """A rival's row with its twin's name and study, each metric's ratio of medians to the twin's,
    and its paired verdicts (not yet decided)."""
    if twin is None:
        return row.replace(twin=None, twin_study=None)
    read = {m.name: m.read for m in METRICS}
    return _ratios(row, twin).replace(paired=verdicts.paired(rival_runs, twin_runs, read, margins))


def group_rows(records: list, margins: dict | None = None) -> list[Row]:
    """One row per (dataset, protocol, device, entry): an entry is `ff` or `bp-mlp@ff`. Each
    rival's row holds its paired comparisons with its twin, decided as one family (`verdicts`)
    against `margins` (default verdicts.MARGINS). Paired comparisons pool every machine (each
    unit ran its pair on one); absolute costs from several kinds of machine are summarised per
    kind (`by_machine`), since a median over a laptop and a server describes neither."""
    margins = margins or verdicts.MARGINS
    groups: dict = {}
    for r in records:
        for entry in r["entries"]:
            s = r["spec"]
            groups.setdefault((s["dataset"], s["protocol"], s["device"], entry), []).append(r)
    rows = {key: _row(*key, runs) for key, runs in groups.items()}

    for key, row in rows.items():
        entry = row.spec.entry
        if entry.twin_variant:
            plain = rows.get((*key[:3], str(entry.plain_twin)))
            rows[key] = _ratios(row, plain) if plain else row
            continue
        if entry.is_twin:
            continue
        twins = sorted((t for t in rows.values() if t.spec.entry.is_twin and t.spec.entry.rival_entry == entry
                        and (t.dataset, t.protocol, t.device) == key[:3]), key=lambda t: t.spec.entry.twin_variant or "")
        also = [_with_twin(row, t, groups[key], groups[(*key[:3], t.entry)], margins)
                for t in twins if t.spec.entry.twin_variant]
        twin = next((t for t in twins if not t.spec.entry.twin_variant), None)     # the plain twin
        rows[key] = _with_twin(row, twin, groups[key], groups[(*key[:3], twin.entry)] if twin else [],
                               margins).replace(also=tuple(also))
    # one family: every comparison's verdicts are decided together (Holm), then given back to their rows
    places = [(key, i, metric) for key, row in rows.items() for i, c in enumerate((row, *row.also))
              for metric in c.paired]
    decided = verdicts.decide([(rows[key], *rows[key].also)[i].paired[metric] for key, i, metric in places])
    found: dict = {}
    for (key, i, metric), verdict in zip(places, decided):
        found.setdefault((key, i), {})[metric] = verdict

    def settled(key, row):
        also = tuple(c.replace(paired=found[(key, i + 1)]) for i, c in enumerate(row.also))
        return row.replace(paired=found.get((key, 0), row.paired), also=also)

    rows = [settled(key, row) for key, row in rows.items()]
    return sorted(rows, key=lambda r: (r.dataset, r.protocol, str(r.spec.entry.rival_entry), r.spec.entry.is_twin,
                                       r.spec.entry.twin_variant or ""))


def _fmt(summary: Summary, digits: int = 2) -> str:
    if summary.get("by_machine"):
        return "by machine kind (below)"
    if summary["median"] is None:
        return (f"left out: other work spoiled all {summary.left_out} runs (--rerun-contaminated)" if summary.left_out
                else "not measured")
    text = f"{summary['median']:.{digits}f} [{summary['lo']:.{digits}f}, {summary['hi']:.{digits}f}]"
    if summary.get("ratio") is not None:
        text += f" (x{summary['ratio']:.2f})"
    return text


def markdown(rows: list[dict], title: str, records: list[dict] = ()) -> str:
    """report.md: the summary (`summary`), then the tables."""
    found = claims.judge(rows)
    out = summary.summary(rows, list(records), found, title) + [
           summary.TABLES, "",
           "Median over seeds [interval]: a distribution-free order-statistic interval for the median, its "
           "achieved confidence in the seeds column (the range of 3 seeds is a 75% interval; 95% needs 6 "
           "seeds). (xR) = ratio of medians to the BP twin (a twin variant's, e.g. bp-mlp+checkpoint@mf, to "
           "its plain twin: what the variant costs or saves). Study: Spyra & Dzwinel 2025, mean of 3 runs on an "
           "A100 (full datasets; its configuration is named).", ""]
    for dataset in sorted({r["dataset"] for r in rows}):
        subset = [r for r in rows if r["dataset"] == dataset]
        headers = ["entry", "seeds"]
        for m in METRICS:
            headers += [m.header] + ([m.study[0]] if m.study else [])
        out += [f"### {dataset}: each entry", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for r in subset:
            failed = f" ({len(r['failed'])} failed)" if r["failed"] else ""
            kind = (f" ({r['test_acc']['confidence']:.1%} interval)" if r["test_acc"]["n"] > 1
                    else " (no interval)" if r["test_acc"]["n"] else "")
            cells = [r["entry"], f"{r['seeds_ok']}{failed}{kind}"]
            for m in METRICS:
                cells.append(_fmt(r[m.name], m.digits))
                if m.study:
                    value = m.study[1](r["study"]) if r["study"] else None
                    cells.append("-" if value is None else f"{value:g}"        # as the study printed it
                                 + (f" ({r['study'].config})" if m.name == "test_acc" else ""))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    compared = verdicts.comparisons(rows)
    margins = {p["kind"]: p["margin"] for r in compared for p in r["paired"].values()}   # as compared
    out += ["### Each rival against its twin, paired by seed", "",
            f"Per seed, the rival's value against its twin's of the same seed. Interval: {verdicts.METHOD}. "
            "Outcome: rival or twin better when the interval lies wholly beyond the margin on that side, "
            "equivalent when wholly inside it, inconclusive otherwise (with the paired seeds at which it would be "
            f"decided with {stats.POWER:.0%} probability, if the estimate and spread seen were the truth, at Holm's "
            f"strictest level for this table); below {stats.MIN_DECISIVE_SEEDS} paired seeds every outcome is "
            "exploratory. "
            "Margins: " + ", ".join(f"{kind} {text}" for kind, text in margins.items())
            + f"; {verdicts.TOST_LEVEL}. Multiple comparisons: Holm's correction over every tested comparison "
            "of this report, the claims below included (one family, family-wise error 5%); ESTIMATED energy is "
            "shown, not tested. A rival with a twin variant (a checkpointed twin) is compared with each twin.", "",
            "| dataset | rival vs twin | " + " | ".join(pm.label for pm in verdicts.PAIRED) + " |",
            "|---|---|" + "---|" * len(verdicts.PAIRED)] if margins else []
    for r in compared:
        cells = []
        for pm in verdicts.PAIRED:
            p = r["paired"][pm.metric]
            cells.append(p["text"] if p["estimate"] is None else
                         f"{p['estimate']:.3g} [{p['lo']:.3g}, {p['hi']:.3g}], n={p['n']}: {p['text']}"
                         if p["lo"] is not None else f"{p['estimate']:.3g}, n=1: {p['text']}")
        out.append(f"| {verdicts.where(r, rows)} | {r['entry']} vs {r['twin']} | " + " | ".join(cells) + " |")
    out += by_machine_table(rows)
    if found:
        out += ["", "### The study's claims, in its words, tested here", "", claims.markdown(found)]
    out += ["", "### Protocol (the same for both members of each pair)", ""]
    for r in rows:
        if not r.get("twin"):
            continue
        spec, rule = r["spec"], r["spec"].rule
        line = (f"- {r['dataset']} / {r['protocol']}, {r['entry']} and {r['twin']}: batch {spec.batch_size}, "
                f"epoch cap {rule.epochs} per stage, stop on {rule.monitor} with patience "
                f"{rule.patience if rule.patience is not None else 'none (matched budget)'} and min_delta "
                f"{rule.min_delta}; augmentation: {r['augmentation']}; execution {', '.join(r['mode'])}; "
                f"device {r['device']}")
        if initialisation := getattr(registry.REGISTRY.get(r["algorithm"]), "initialisation", ""):
            line += f"; initialisation differs: {initialisation}, its BP twin from PyTorch's default (Kaiming-uniform)"
        out.append(line)
    out += ["", "### How each entry differs from the study's run", "",
            "Every setting the study is known to have run the entry with (its paper and its authors' code) "
            "that this run does not share, as ours (study theirs). An entry named name+variant is the kit's "
            "variant of the study's entry `name`, compared with the same published row.", ""]
    for r in rows:
        out.append(f"- {r['dataset']} / {r['entry']}: " + ("; ".join(r["differences"]) or "none known"))
    out += ["", "### Configurations (tuned values included)", ""]
    for r in rows:
        out.append(f"- {r['dataset']} / {r['entry']}: {format_settings(thaw(r['config'])) or 'defaults'}")
    out += ["", "### Where the numbers come from", ""]
    sources = sorted({s for r in rows for s in r["energy_sources"]})
    out += [f"- energy: {s}" for s in sources]
    methods = sorted({r["memory_method"] for r in rows if r["memory_method"]})
    out += [f"- memory: {m}" for m in methods]
    out.append(f"- other work on the machine: each run records its process's CPU time and the foreign load on its "
               f"CPUs (/proc/stat: busy CPU time less its own, per second of the run); above "
               f"{FOREIGN_LOAD_LIMIT} cores, for at least {FOREIGN_CPU_FLOOR_S} CPU-seconds, its time and energy "
               "are contaminated and left out (the summary counts them)")
    out.append("- time and energy: one window, the whole fit() call after an untimed warm-up in the same "
               "execution mode: stage preparation (CaFo's block features, greedy MF's cached activations), "
               "the training epochs and their validation; the test evaluation is outside it")
    failures = [(r["entry"], f) for r in rows for f in r["failed"]]
    if failures:
        out += ["", "### Failed runs", ""] + [f"- {e}: {f}" for e, f in failures]
    return "\n".join(out) + "\n"


def by_machine_table(rows: list[dict]) -> list[str]:
    """Absolute costs of the entries that ran on several kinds of machine, one line per kind."""
    mixed = [r for r in rows if r["by_machine"]]
    if not mixed:
        return []
    columns = [m for m in METRICS if m.per_machine]
    out = ["", "### Time and energy by machine kind", "",
           "The entries above that ran on several kinds of machine; their paired comparisons pool "
           "every machine, since each pair's seed ran on one.", "",
           "| dataset | entry | machine kind | seeds | " + " | ".join(m.header for m in columns) + " |",
           "|" + "---|" * (4 + len(columns))]
    for r in mixed:
        for kind, summaries in r["by_machine"].items():
            out.append(f"| {r['dataset']} | {r['entry']} | {kind} | {summaries[columns[0].name]['n']} | "
                       + " | ".join(_fmt(summaries[m.name], m.digits) for m in columns) + " |")
    return out


def write_csv(rows: list[dict]) -> str:
    """One line per entry: each metric's median, interval and its achieved confidence, the ratio to
    the twin it names; for a rival, each paired comparison's estimate, 95% interval and outcome, and
    one more line for each other twin it is compared with (a checkpointed twin)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = ["dataset", "protocol", "device", "entry", "twin", "seeds_ok", "interval"]
    for name in (m.name for m in METRICS):
        header += [f"{name}_median", f"{name}_lo", f"{name}_hi", f"{name}_confidence", f"{name}_ratio_to_twin"]
    header += ["paired_method"]
    for pm in verdicts.PAIRED:
        header += [f"paired_{pm.metric}_{part}" for part in ("n", "estimate", "lo", "hi", "margin", "outcome",
                                                              "seeds_needed")]
    header += ["study_config", "study_acc", "study_time_s", "study_energy_wh", "study_epochs"]
    writer.writerow(header)
    for r in (c for row in rows for c in (row, *row.also)):
        line = [r["dataset"], r["protocol"], r["device"], r["entry"], r["twin"] or "", r["seeds_ok"],
                r["test_acc"]["interval"]]
        for name in (m.name for m in METRICS):
            s = r[name]
            line += [s["median"], s["lo"], s["hi"], s["confidence"], s.get("ratio")]
        line.append(verdicts.METHOD if r.get("paired") else "")
        for pm in verdicts.PAIRED:
            p = r.get("paired", {}).get(pm.metric)
            line += ([p["n"], p["estimate"], p["lo"], p["hi"], p["margin"], p["text"], p["seeds_needed"]]
                     if p else [""] * 7)
        study = r["study"]
        line += [study.config, study.acc, study.time_s, study.energy_wh, study.epochs] if study else [""] * 5
        writer.writerow(line)
    return buffer.getvalue()


def write_report(records: list[dict], out: Path, title: str = "", margins: dict | None = None) -> list[Path]:
    """report.md, report.csv and the figures, each written atomically into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = group_rows(records, margins)
    paths = [out / "report.md", out / "report.csv"]
    atomic_write(paths[0], markdown(rows, title, records))
    atomic_write(paths[1], write_csv(rows))
    paths += figures.benchmark_figures(rows, records, out, margins)
    return paths
