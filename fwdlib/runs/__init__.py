"""One run, below every app that runs one: its name in the report (entry), its description (spec),
building and training it (build) and its record, typed and checked field by field (record).

The benchmark, the tuner, the speed command and the GPU check stand on this floor; it imports no
database, plotting or search library, so `from fwdlib import RunSpec, Record` stays light.
"""
from ..launch import lazy

__getattr__ = lazy(__name__, {"Entry": ".entry:Entry", "RunSpec": ".spec:RunSpec", "StoppingRule": ".spec:StoppingRule",
                              "Record": ".record:Record", "build_model": ".build:build_model",
                              "fit_spec": ".build:fit_spec"})
