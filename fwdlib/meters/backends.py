"""The energy backends (NVML's counter, a sampled power sensor, RAPL, CodeCarbon) and the probes
that find them. Each backend meters some devices: start() fixes the zero; snapshot() returns the
energy of every device since start as {device: (joules or None, reason)}."""
from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
import warnings
from pathlib import Path
from typing import Callable, NamedTuple

import torch
from .readings import DEFAULT_COUNTRY, DeviceEnergy, NVML_FI_DEV_POWER_INSTANT



class NvmlCounter:
    """NVML's total-energy counter (mJ since driver load): energy = end - start."""
    backend, source, kind = "nvml_counter", "measured_counter", "gpu"

    def __init__(self, nvml, handles: dict[str, object]):
        self.nvml, self.handles = nvml, handles
        self.devices = list(handles)

    def start(self) -> None:
        self.start_mj = {d: self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for d, h in self.handles.items()}

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        out = {}
        for device, handle in self.handles.items():
            try:
                delta = self.nvml.nvmlDeviceGetTotalEnergyConsumption(handle) - self.start_mj[device]
            except Exception as err:  # noqa: BLE001 - a failed read is recorded, never raised
                out[device] = (None, f"counter read failed: {err}")
                continue
            out[device] = ((delta / 1000.0, None) if delta >= 0 else
                           (None, "energy counter went backwards (reset by the driver): window invalid"))
        return out


class PowerSampler:
    """Polls power (W) every `interval` s in a thread and integrates with the trapezoid rule."""
    backend, source, kind = "nvml_sampler", "sampled_power", "gpu"

    def __init__(self, read_watts: dict[str, Callable[[], float]], interval: float = 0.1,
                 clock: Callable[[], float] = time.perf_counter):
        self.read_watts, self.interval, self.clock = read_watts, interval, clock
        self.devices = list(read_watts)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def sample(self) -> float:
        with self._lock:
            now = self.clock()
            for device, read in self.read_watts.items():
                try:
                    self.samples[device].append((now, float(read())))
                except Exception as err:  # noqa: BLE001
                    self.errors[device] = f"power read failed: {err}"
            return now

    def start(self, thread: bool = True) -> None:
        """Zero the integral and take the first sample; poll in a thread unless thread=False."""
        self.samples = {d: [] for d in self.read_watts}
        self.errors: dict[str, str] = {}
        self.t0 = self.sample()
        self._stop = threading.Event()
        if thread:
            self._thread = threading.Thread(target=self._run, name="fwdlib-power-sampler", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        self.sample()
        out = {}
        for device, samples in self.samples.items():
            if len(samples) < 2:
                out[device] = (None, self.errors.get(device, "fewer than two power samples"))
            else:
                out[device] = (integrate(samples, self.t0, samples[-1][0]), None)
        return out


def integrate(samples: list[tuple[float, float]], t_start: float, t_end: float) -> float:
    """Trapezoid integral of (time, watts) samples over [t_start, t_end], in joules."""
    inside = [(t, w) for t, w in samples if t_start <= t <= t_end]
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(inside, inside[1:]))


class Rapl:
    """RAPL package counters under /sys/class/powercap (µJ, wrapping at max_energy_range_uj).

    Only top-level package domains (intel-rapl:N) are read: their sub-domains (core, uncore,
    dram) are parts of the package and would be counted twice; psys overlaps them too.
    """
    backend, source, kind = "rapl", "measured_counter", "cpu"

    def __init__(self, root: str | Path = "/sys/class/powercap", opener=open):
        self.root, self.opener = Path(root), opener
        self.domains = {}
        for path in sorted(self.root.glob("*rapl:*")):
            if path.name.count(":") != 1:                   # a sub-domain like intel-rapl:0:1
                continue
            name = self._read(path / "name").strip()
            if name.startswith("package"):
                self.domains[f"cpu {name}"] = path
        if not self.domains:
            raise RuntimeError(f"no RAPL package domains under {self.root}")
        self.devices = list(self.domains)
        for path in self.domains.values():                  # fail now if unreadable (permissions)
            int(self._read(path / "energy_uj"))

    def _read(self, path: Path) -> str:
        with self.opener(path) as f:
            return f.read()

    def start(self) -> None:
        self.max_uj = {d: int(self._read(p / "max_energy_range_uj")) for d, p in self.domains.items()}
        self.last = {d: int(self._read(p / "energy_uj")) for d, p in self.domains.items()}
        self.total = dict.fromkeys(self.domains, 0)

    def snapshot(self) -> dict[str, tuple[float | None, str | None]]:
        """Accumulate since the last read; a smaller reading means the counter wrapped once.
        (Read at least every wrap period - hours at desktop power - to stay exact.)"""
        for device, path in self.domains.items():
            now = int(self._read(path / "energy_uj"))
            delta = now - self.last[device]
            if delta < 0:
                delta += self.max_uj[device]
            self.total[device] += delta
            self.last[device] = now
        return {d: (uj / 1e6, None) for d, uj in self.total.items()}


@functools.lru_cache(maxsize=1)
def _codecarbon_countries() -> frozenset[str]:
    """The countries CodeCarbon has a grid mix for, read once (empty if it cannot be read)."""
    try:
        from codecarbon.input import DataSource
        return frozenset(DataSource().get_global_energy_mix_data())
    except Exception:  # noqa: BLE001 - a check, not a requirement
        return frozenset()


def check_country(country: str, stacklevel: int = 3) -> None:
    """Warn when CodeCarbon has no grid mix for `country`: it would silently use the world
    average. (Nothing is said when CodeCarbon's own data cannot be read.)"""
    known = _codecarbon_countries()
    if known and country not in known:
        warnings.warn(f"CodeCarbon knows no country {country!r} (ISO 3166 alpha-3, e.g. POL, FRA, USA): "
                      "its CO2 figure would use the world-average grid. Pass a known code.", stacklevel=stacklevel)


class CodeCarbon:
    """CodeCarbon's OfflineEmissionsTracker: CO2 for the window from a national grid factor.

    Never the online tracker (it probes cloud metadata addresses and, offline, silently falls
    back to another country). No output files unless `output_dir` is given. Its CPU figure
    without RAPL is TDP x load and its RAM figure a constant power: both are estimates.
    """
    backend = "codecarbon"

    def __init__(self, country: str = DEFAULT_COUNTRY, output_dir: str | None = None):
        from codecarbon import OfflineEmissionsTracker

        logging.getLogger("codecarbon").setLevel(logging.ERROR)
        self.country = country
        options = dict(log_level="error", allow_multiple_runs=True, measure_power_secs=1)
        try:   # CodeCarbon 3.x names its outputs; 2.x used the save_to_file flag
            from codecarbon.emissions_tracker import OutputMethod
            options["output_methods"] = [OutputMethod.CSV] if output_dir is not None else []
        except ImportError:
            options["save_to_file"] = output_dir is not None
        if output_dir is not None:
            options["output_dir"] = str(output_dir)
        with _quiet_codecarbon():
            self.tracker = OfflineEmissionsTracker(country_iso_code=country, **options)

    def start(self) -> None:
        with _quiet_codecarbon():
            self.tracker.start()


    def stop(self) -> "Emissions":
        with _quiet_codecarbon():
            emissions = self.tracker.stop()
        data = getattr(self.tracker, "final_emissions_data", None)
        method = f"CodeCarbon {package_version('codecarbon')} OfflineEmissionsTracker, country {self.country}"
        if emissions is None or data is None:
            return Emissions(None, method + ": FAILED (tracker returned None)", reason="tracker returned None")
        kwh = data.energy_consumed
        return Emissions(float(emissions), method, emissions / kwh * 1000 if kwh else None,
                         data.cpu_energy * 3.6e6, data.ram_energy * 3.6e6, data.gpu_energy * 3.6e6)


class Emissions(NamedTuple):
    """What CodeCarbon's tracker reports for a window (joules are its estimates; reason: why not)."""
    co2_kg: float | None
    method: str
    grid_g_per_kwh: float | None = None
    cpu_j: float | None = None
    ram_j: float | None = None
    gpu_j: float | None = None
    reason: str | None = None


@contextlib.contextmanager
def _quiet_codecarbon():
    """CodeCarbon logs at INFO while it starts, before its own log_level applies."""
    logger = logging.getLogger("codecarbon")
    previous, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = previous


def package_version(package: str) -> str:
    try:
        from importlib.metadata import version
        return version(package)
    except Exception:  # noqa: BLE001
        return "unknown"


# ============================================================================ probing

def cuda_devices() -> list[tuple[str, str, str]]:
    """(label, name, uuid) of every CUDA device torch can see."""
    out = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append((f"cuda:{i}", props.name, str(getattr(props, "uuid", ""))))
    return out


def _strip_uuid(uuid) -> str:
    text = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
    return text.lower().removeprefix("gpu-").removeprefix("mig-")


def probe_gpus(nvml, devices: list[tuple[str, str, str]], interval: float):
    """Backends for the torch-visible GPUs plus entries for those that cannot be metered."""
    if not devices:
        return [], [DeviceEnergy("GPU", "gpu", None, "unavailable", "nvml", "no CUDA device visible to torch")], {}
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError as err:
            return [], [DeviceEnergy(label, "gpu", None, "unavailable", "nvml",
                                     f"NVML bindings not importable ({err}); pip install nvidia-ml-py")
                        for label, _, _ in devices], {}
    try:
        nvml.nvmlInit()
        handles_by_uuid = {}
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            handles_by_uuid[_strip_uuid(nvml.nvmlDeviceGetUUID(handle))] = handle
    except Exception as err:  # noqa: BLE001 - e.g. NVMLError_LibraryNotFound
        return [], [DeviceEnergy(label, "gpu", None, "unavailable", "nvml", f"NVML failed: {err}")
                    for label, _, _ in devices], {}
    counters, sampled, missing, matched = {}, {}, [], {}
    for label, name, uuid in devices:
        handle = handles_by_uuid.get(_strip_uuid(uuid))
        if handle is None:
            missing.append(DeviceEnergy(f"{label} ({name})", "gpu", None, "unavailable", "nvml",
                                        f"no NVML device with UUID {uuid}"))
            continue
        key = f"{label} ({name})"
        matched[key] = handle
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            counters[key] = handle
        except Exception:  # noqa: BLE001 - not supported before Volta: sample power instead
            sampled[key] = power_reader(nvml, handle)
    backends = []
    if counters:
        backends.append(NvmlCounter(nvml, counters))
    if sampled:
        backends.append(PowerSampler(sampled, interval))
    return backends, missing, matched


def power_reader(nvml, handle) -> Callable[[], float]:
    """Watts from the instantaneous power field where the driver has it, else the averaged
    nvmlDeviceGetPowerUsage (a 1 s average: it under-counts short bursts)."""
    try:
        value = nvml.nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_POWER_INSTANT])[0]
        if getattr(value, "nvmlReturn", 0) == 0:
            def instant():
                v = nvml.nvmlDeviceGetFieldValues(handle, [NVML_FI_DEV_POWER_INSTANT])[0]
                return v.value.uiVal / 1000.0
            instant()
            return instant
    except Exception:  # noqa: BLE001
        pass
    return lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0


def probe_rapl(root="/sys/class/powercap", opener=open):
    try:
        return [Rapl(root, opener)], []
    except Exception as err:  # noqa: BLE001 - absent (VMs, Colab, macOS) or permission denied
        return [], [DeviceEnergy("CPU packages", "cpu", None, "unavailable", "rapl",
                                 f"RAPL not readable: {err}")]
