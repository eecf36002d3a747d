"""python -m fwdlib.tune: started by fwdlib.launch, so that a signal during the imports ends it with one line."""
from fwdlib.launch import tune

tune()
