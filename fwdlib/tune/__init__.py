"""The fair hyperparameter search (`python -m fwdlib.tune`; search.py says what makes it fair).

space    what is searched, and each study's sampler seed
storage  SQLite, a journal file or a database server; secrets never printed
workers  several workers on one study: retries of dead workers' trials, Ctrl-C, --status
search   the benchmark's RunSpec of an entry, trained by every trial; cli: the command
"""
from ..utils import hide_secrets, redact, worker_id
from .cli import main, parse_overrides
from .search import tune
from .space import sampler_seed, search_space
from .storage import open_storage
from .workers import recover_abandoned, retry_of, status

__all__ = ["hide_secrets", "main", "open_storage", "parse_overrides", "recover_abandoned", "redact", "retry_of",
           "sampler_seed", "search_space", "status", "tune", "worker_id"]
