"""python -m fwdlib COMMAND ...: the `fwdlib` command (fwdlib.launch)."""
from fwdlib.launch import fwdlib

fwdlib()
