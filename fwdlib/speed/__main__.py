"""python -m fwdlib.speed"""
import sys

from .profiler import main

sys.exit(main())
