"""The fair hyperparameter search (`fwdlib tune`; search.py says what makes it fair).

space    what is searched, and each study's sampler seed
storage  SQLite, a journal file or a database server; secrets never printed
workers  several workers on one study: retries of dead workers' trials, Ctrl-C, --status
search_spec  a search built and checked at the edge: the benchmark's RunSpec of an entry, its space
search   the study that every trial of a SearchSpec fills; cli: the command
"""
from ..launch import lazy

NAMES = {"hide_secrets": "fwdlib.commandline:hide_secrets", "redact": "fwdlib.commandline:redact",
         "worker_id": "fwdlib.processes:worker_id", "main": ".cli:main", "parse_overrides": ".cli:parse_overrides",
         "tune": ".search:tune", "SearchSpec": ".search_spec:SearchSpec", "sampler_seed": ".space:sampler_seed", "search_space": ".space:search_space",
         "open_storage": ".storage:open_storage", "recover_abandoned": ".workers:recover_abandoned",
         "retry_of": ".workers:retry_of", "status": ".workers:status"}
__getattr__ = lazy(__name__, NAMES)     # `fwdlib tune` imports torch inside fwdlib.launch's boundary
__all__ = sorted(NAMES)
