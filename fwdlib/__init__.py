"""fwdlib: deep learning without backpropagation (FF, CaFo, MF), measured against backprop."""
from .utils import pick_device, quick_mode, seed_all

__version__ = "0.1.0"
__all__ = ["pick_device", "quick_mode", "seed_all", "__version__"]
