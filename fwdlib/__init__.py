"""fwdlib: deep learning without backpropagation (FF, CaFo, MF), measured against backprop.

Its floors, each importing only those below it:
    launch, session, files,          the fwdlib command and its signals (no torch); a student's session (device,
    processes, commandline,          seeds, quick mode, threads); files written whole; other processes; command
    graphs, meters                   lines with secrets hidden; CUDA
                                     graphs; energy by backend with provenance, step memory
    data, algorithms, coordination   datasets on the device; the math of FF, CaFo, MF and their BP twins;
                                     workers coordinating through a database (the tuner's and the pool's)
    train                            one training loop (eager or CUDA graphs)
    runs                             one run: its entry, its spec, building and training it, its typed record
    bench                            presets, the study's facts, the results log, a class's pool, verdicts, report
    tune, speed                      the hyperparameter search and the speed command: they train runs' specs
    course                           exercise checks per lesson, teaching figures, flow diagrams
    gpu_check                        every GPU acceptance check in one command

The short names the notebooks use keep working: `from fwdlib import energy, plots, report` loads
the module where it lives now (`fwdlib.meters.energy`, `fwdlib.course.plots`, `fwdlib.bench.report`).
"""
from __future__ import annotations

from .launch import lazy

__version__ = "0.2.0"


# short name -> the module it names; loaded on first use, so `import fwdlib` stays light
MODULES = {
    "algorithms": "fwdlib.algorithms", "data": "fwdlib.data", "train": "fwdlib.train", "graphs": "fwdlib.graphs",
    "runs": "fwdlib.runs",
    "energy": "fwdlib.meters.energy", "memory": "fwdlib.meters.memory", "bench": "fwdlib.bench",
    "presets": "fwdlib.bench.presets", "study": "fwdlib.bench.study", "params": "fwdlib.bench.params",
    "report": "fwdlib.bench.report", "verdicts": "fwdlib.bench.verdicts", "stats": "fwdlib.bench.stats",
    "tune": "fwdlib.tune", "speed": "fwdlib.speed",
    "plots": "fwdlib.course.plots", "checks": "fwdlib.course.checks", "session": "fwdlib.session",
}
HELPERS = ("banner", "pick_device", "quick_mode", "seed_all", "use_quick_mode", "use_training_threads")
# the run floor's two types, for a reader of results: `from fwdlib import RunSpec, Record`
TYPES = {"RunSpec": "fwdlib.runs.spec:RunSpec", "Record": "fwdlib.runs.record:Record"}
__getattr__ = lazy(__name__, {**MODULES, **TYPES, **{name: f"fwdlib.session:{name}" for name in HELPERS}})
__all__ = [*HELPERS, "__version__", *MODULES, *TYPES]
