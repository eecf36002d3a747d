"""fwdlib: deep learning without backpropagation (FF, CaFo, MF), measured against backprop."""
from . import utils
from .utils import banner, pick_device, quick_mode, seed_all

__version__ = "0.1.0"
__all__ = ["banner", "pick_device", "quick_mode", "seed_all", "utils", "__version__"]
