"""The head-to-head benchmark: every forward-only algorithm against its backprop twin
(`fwdlib bench`; runner.py says how a benchmark is run, and why it is fair).

(a run's entry, spec, training and record live one floor down, in fwdlib.runs)
study    the study's published table and how it ran each algorithm
presets  which pairs run on which data; plan: every run of a preset, interleaved
params   tuned-parameter files; results: the append-only results log
benchmark  what a benchmark runs, built and checked at the edge (`Benchmark.of`)
runner   trains and meters each run; cli: the command
units, pool, workers  a class's machines in one study: its (pair, seed) units, their table, the
         workers' loop and the study's actions
stats    intervals whose confidence is what they say, Holm, seeds needed (for a handful of seeds)
verdicts each rival against its twin against a margin, one Holm family per report
claims   the paper's claims in its words and places, judged in their scope on its configuration
summary, report, figures  what the results say: 40 lines first, then the tables and forests
"""
from ..launch import lazy

# loaded on first use: `fwdlib bench` imports torch inside its error boundary (fwdlib.launch)
__getattr__ = lazy(__name__, {"main": ".cli:main", "PRESETS": ".presets:PRESETS", "Pair": ".presets:Pair",
                              "Preset": ".presets:Preset", "ResultsLog": ".results:ResultsLog",
                              "ResultsNotSaved": ".results:ResultsNotSaved", "run_folder": ".results:run_folder",
                              "PROTOCOLS": "fwdlib.runs.spec:PROTOCOLS", "run": ".runner:run",
                              "Benchmark": ".benchmark:Benchmark"})
